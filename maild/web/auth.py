"""Who is asking: sessions in the database, CSRF tokens, rate-limited log-in, SSO header.

A session cookie holds a random token; the database keeps only its SHA-256,
so a copy of the database logs nobody in. Each session has its own CSRF
token that every form carries back. Refused log-ins are counted in the
database, so several maild instances share one limit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, col, delete, select

from maild.log import get_logger
from maild.models import LoginFailure, WebSession, WebUser, utcnow
from maild.web.users import Person, check_password, person_of

log = get_logger("maild.web")

COOKIE = "maild_session"
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20


@dataclass(frozen=True)
class Visitor:
    """A logged-in person with their session's CSRF token."""

    person: Person
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lookup(engine: Engine, token: str | None, now: datetime) -> Visitor | None:
    """The person a session cookie belongs to, if the session is live and the user enabled."""
    if not token:
        return None
    with Session(engine) as session:
        row = session.get(WebSession, _digest(token))
        if row is None or row.expires_at <= now:
            return None
        user = session.get(WebUser, row.user)
        if user is None or user.disabled:
            return None
        return Visitor(person_of(user), row.csrf)


def start_session(engine: Engine, name: str, hours: float, now: datetime) -> str:
    """A new session for `name`; returns the cookie token (expired sessions are swept)."""
    token = secrets.token_urlsafe(32)
    with Session(engine) as session:
        session.execute(delete(WebSession).where(col(WebSession.expires_at) <= now))
        session.add(WebSession(token_hash=_digest(token), user=name,
                               csrf=secrets.token_urlsafe(24), created_at=now,
                               expires_at=now + timedelta(hours=hours)))
        session.commit()
    return token


def end_session(engine: Engine, token: str | None) -> None:
    """Log the session out (nothing happens for an unknown token)."""
    if not token:
        return
    with Session(engine) as session:
        session.execute(delete(WebSession).where(col(WebSession.token_hash) == _digest(token)))
        session.commit()


class TooManyAttempts(Exception):
    """Log-in refused without checking the password: too many failures lately."""


def log_in(engine: Engine, name: str, password: str, address: str,
           now: datetime) -> Person | None:
    """The person when the password is right; counts failures; raises TooManyAttempts."""
    name = name.strip()[:128]
    address = address[:64]
    since = now - FAILURE_WINDOW
    with Session(engine) as session:
        by_user = session.scalar(select(func.count()).select_from(LoginFailure).where(
            col(LoginFailure.user) == name, col(LoginFailure.at) > since)) or 0
        by_address = session.scalar(select(func.count()).select_from(LoginFailure).where(
            col(LoginFailure.address) == address, col(LoginFailure.at) > since)) or 0
        if by_user >= MAX_FAILURES_PER_USER or by_address >= MAX_FAILURES_PER_ADDRESS:
            log.warning("web.login_throttled", user=name, address=address,
                        failures_user=by_user, failures_address=by_address)
            raise TooManyAttempts
        person = check_password(session, name, password)
        if person is None:
            session.add(LoginFailure(at=now, user=name, address=address))
            session.execute(delete(LoginFailure).where(
                col(LoginFailure.at) < now - FAILURE_WINDOW * 4))
            session.commit()
            log.warning("web.login_failed", user=name, address=address)
            return None
        log.info("web.login", user=name, address=address)
        return person


def sso_person(engine: Engine, name: str) -> Person | None:
    """The maild user a trusted proxy named, if they exist and are enabled."""
    with Session(engine) as session:
        user = session.get(WebUser, name.strip())
        return person_of(user) if user is not None and not user.disabled else None


def csrf_ok(expected: str, given: object) -> bool:
    """Whether the form's token is the session's (compared in constant time)."""
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


def now() -> datetime:
    """The current time (UTC)."""
    return utcnow()
