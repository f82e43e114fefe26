"""The people who log in to the web: agents of some queues and administrators.

Passwords are kept only as argon2id hashes. A user from a trusted single
sign-on proxy needs no password but must still exist here, so roles and
queues are always maild's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, delete, select

from maild.models import WebSession, WebUser, utcnow

ROLES = ("agent", "admin")
LANGUAGES = ("sv", "en")
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_HASHER = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when a user does not exist, so a wrong name costs as much time as a
    wrong password and does not tell who has an account."""
    return _HASHER.hash("maild: no such user")


class UserError(Exception):
    """A user cannot be added or changed as asked; the text says why."""


@dataclass(frozen=True)
class Person:
    """A logged-in user as the web sees them."""

    name: str
    role: str
    queues: tuple[str, ...]
    language: str

    @property
    def is_admin(self) -> bool:
        """Administrators see every queue and the rules."""
        return self.role == "admin"

    def may_see(self, queue: str | None) -> bool:
        """Whether the person may read and work tickets of `queue`."""
        return self.is_admin or (queue is not None and queue in self.queues)


def person_of(user: WebUser) -> Person:
    """The web's view of a user row."""
    return Person(name=user.name, role=user.role, queues=tuple(user.queues or ()),
                  language=user.language)


def hash_password(password: str) -> str:
    """An argon2id hash of `password`; refuses one shorter than MIN_PASSWORD characters."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def check_password(session: Session, name: str, password: str) -> Person | None:
    """The user when `password` is theirs and they are not disabled, else None."""
    user = session.get(WebUser, name)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled or not user.password_hash:
        return None
    if _HASHER.check_needs_rehash(stored):
        user.password_hash = _HASHER.hash(password)
        session.add(user)
        session.commit()
    return person_of(user)


def validate(name: str, role: str, queues: list[str], known_queues: list[str],
             language: str = "sv") -> None:
    """Raise UserError when the name, role, language or a queue is not acceptable."""
    if not _NAME.match(name):
        raise UserError(f"'{name}' is not a user name: letters, digits and . _ @ + - only, "
                        "starting with a letter or digit")
    if role not in ROLES:
        raise UserError(f"role must be one of: {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise UserError(f"language must be one of: {', '.join(LANGUAGES)}")
    unknown = [queue for queue in queues if queue not in known_queues]
    if unknown:
        raise UserError(f"no queue {', '.join(unknown)}; queues: {', '.join(known_queues)}")
    if role == "agent" and not queues:
        raise UserError("an agent needs at least one queue (--queues)")


def add_user(session: Session, name: str, role: str, queues: list[str], *,
             password: str | None, known_queues: list[str], language: str = "sv") -> WebUser:
    """Create a user (password None: single sign-on only); refused when the name is taken."""
    validate(name, role, queues, known_queues, language)
    if session.get(WebUser, name) is not None:
        raise UserError(f"there is already a user {name}")
    user = WebUser(name=name, role=role, queues=queues, language=language,
                   password_hash=hash_password(password) if password is not None else None,
                   created_at=utcnow())
    session.add(user)
    return user


def set_password(session: Session, name: str, password: str) -> None:
    """Give `name` a new password and log out their browsers."""
    user = session.get(WebUser, name)
    if user is None:
        raise UserError(f"there is no user {name}")
    user.password_hash = hash_password(password)
    session.add(user)
    session.execute(delete(WebSession).where(col(WebSession.user) == name))


def remove_user(session: Session, name: str) -> None:
    """Delete `name` and end their sessions."""
    user = session.get(WebUser, name)
    if user is None:
        raise UserError(f"there is no user {name}")
    session.execute(delete(WebSession).where(col(WebSession.user) == name))
    session.delete(user)


def all_users(session: Session) -> list[WebUser]:
    """Every user, by name."""
    return list(session.exec(select(WebUser).order_by(col(WebUser.name))))
