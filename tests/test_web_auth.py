"""Web users and sessions on SQLite and PostgreSQL: hashes, sessions, throttling, queues."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from maild.models import WebSession, WebUser, utcnow
from maild.runtime import Runtime
from maild.web import auth
from maild.web.tickets import Filters, NotAllowed, queue_counts, ticket_detail, ticket_list
from maild.web.users import UserError, add_user, person_of, remove_user, set_password
from tests.mailmaker import support_mail
from tests.pipeline_helpers import receive

PASSWORD = "ett-langt-losenord"


def _users(runtime: Runtime) -> None:
    queues = list(runtime.rules.queues)
    with Session(runtime.engine) as session:
        add_user(session, "agnes", "agent", ["web"], password=PASSWORD, known_queues=queues)
        add_user(session, "root", "admin", [], password=PASSWORD, known_queues=queues)
        session.commit()


def test_passwords_are_hashed_sessions_expire_and_end(runtime: Runtime) -> None:
    _users(runtime)
    now = utcnow()
    with Session(runtime.engine) as session:
        stored = session.get(WebUser, "agnes")
        assert stored is not None and stored.password_hash is not None
        assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in \
            stored.password_hash
    person = auth.log_in(runtime.engine, "agnes", PASSWORD, "127.0.0.1", now)
    assert person is not None and person.queues == ("web",)
    token = auth.start_session(runtime.engine, "agnes", 1, now)
    with Session(runtime.engine) as session:
        assert session.get(WebSession, token) is None  # only the digest is stored
    visitor = auth.lookup(runtime.engine, token, now)
    assert visitor is not None and visitor.person.name == "agnes"
    assert auth.lookup(runtime.engine, token, now + timedelta(hours=2)) is None
    with Session(runtime.engine) as session:
        set_password(session, "agnes", "ett-nytt-losenord")
        session.commit()
    assert auth.lookup(runtime.engine, token, now) is None  # new password: logged out
    assert auth.log_in(runtime.engine, "agnes", PASSWORD, "127.0.0.1", now) is None
    with Session(runtime.engine) as session:
        remove_user(session, "agnes")
        session.commit()
        with pytest.raises(UserError):
            remove_user(session, "agnes")


def test_log_in_failures_are_counted_per_user_and_per_address(runtime: Runtime) -> None:
    _users(runtime)
    now = utcnow()
    for _ in range(auth.MAX_FAILURES_PER_USER):
        assert auth.log_in(runtime.engine, "agnes", "fel", "10.0.0.1", now) is None
    with pytest.raises(auth.TooManyAttempts):
        auth.log_in(runtime.engine, "agnes", PASSWORD, "10.0.0.2", now)
    later = now + auth.FAILURE_WINDOW + timedelta(seconds=1)
    assert auth.log_in(runtime.engine, "agnes", PASSWORD, "10.0.0.2", later) is not None
    for index in range(auth.MAX_FAILURES_PER_ADDRESS):
        assert auth.log_in(runtime.engine, f"guess{index}", "fel", "10.0.0.3", later) is None
    with pytest.raises(auth.TooManyAttempts):
        auth.log_in(runtime.engine, "root", PASSWORD, "10.0.0.3", later)


def test_agents_see_only_their_queues(runtime: Runtime) -> None:
    _users(runtime)
    receive(runtime, support_mail())  # bergstroms-bygg: queue web
    receive(runtime, support_mail(sender="Maria Holm <maria.holm@lindqvistlogistik"
                                                    ".se>", subject="Fakturan"))  # queue erp
    with Session(runtime.engine) as session:
        agnes_row, root_row = session.get(WebUser, "agnes"), session.get(WebUser, "root")
        assert agnes_row is not None and root_row is not None
        agnes, root = person_of(agnes_row), person_of(root_row)
    rules, now = runtime.rules, utcnow()
    assert [row["queue"] for row in queue_counts(runtime.engine, agnes, rules, now)] == ["web"]
    mine = ticket_list(runtime.engine, agnes, rules, Filters(), now)
    everything = ticket_list(runtime.engine, root, rules, Filters(), now)
    assert mine.total == 1 and everything.total == 2
    other = next(t for t in everything.rows if t.queue == "erp")
    with pytest.raises(NotAllowed):
        ticket_detail(runtime.engine, agnes, rules, other.number, now)
    detail = ticket_detail(runtime.engine, root, rules, other.number, now)
    assert detail.conversation[0].view is not None
    assert "Fakturan" in detail.conversation[0].view.subject
