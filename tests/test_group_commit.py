"""Group commit: arrivals share a transaction, each learns its own outcome, none after stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from sqlmodel import Session, select

from maild.db import StorageError
from maild.group_commit import GroupCommitter
from maild.models import Inbound
from maild.runtime import Runtime, open_runtime
from tests.conftest import POSTGRES_ADMIN, make_config
from tests.mailmaker import support_mail


def _mail(index: int) -> bytes:
    return support_mail(subject=f"Fel {index}", body=f"Fel nummer {index}.\n")


def test_arrivals_together_are_each_stored_and_answered(runtime: Runtime) -> None:
    async def scenario() -> list[int]:
        committer = GroupCommitter(runtime.engine)
        committer.start()
        stored = await asyncio.gather(*(
            committer.store(_mail(index), "anna@kund.se", ["support@example.se"], "smtp",
                            f"smtp test {index}") for index in range(20)))
        await committer.stop()
        return [result.inbound_id for result in stored]

    ids = asyncio.run(scenario())
    assert len(set(ids)) == 20
    with Session(runtime.engine) as session:
        assert sorted(row.id for row in session.exec(select(Inbound)).all()) == sorted(ids)


def test_an_arrival_after_stop_is_refused_and_what_was_queued_is_kept(
        sqlite_runtime: Runtime) -> None:
    async def scenario() -> None:
        committer = GroupCommitter(sqlite_runtime.engine)
        committer.start()
        queued = [asyncio.ensure_future(committer.store(
            _mail(index), None, ["support@example.se"], "smtp", "smtp test"))
            for index in range(5)]
        await asyncio.sleep(0)  # the five are queued before stop is asked for
        await committer.stop()
        assert all(not future.exception() for future in queued)
        with pytest.raises(StorageError, match="intake is stopping"):
            await committer.store(_mail(99), None, ["support@example.se"], "smtp", "late")

    asyncio.run(scenario())
    with Session(sqlite_runtime.engine) as session:
        assert len(session.exec(select(Inbound)).all()) == 5, "the late one is not stored"


def test_a_database_restart_costs_no_refusal(tmp_path: Path, postgres_url: str) -> None:
    """The writer's connection dies with the server's session; the next arrival is stored."""
    runtime = open_runtime(make_config(tmp_path, postgres_url))

    def cut_every_maild_session() -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid != pg_backend_pid()",
                          (runtime.engine.url.database,))

    async def scenario() -> list[int]:
        committer = GroupCommitter(runtime.engine)
        committer.start()
        first = await committer.store(_mail(1), None, ["support@example.se"], "smtp", "one")
        await asyncio.to_thread(cut_every_maild_session)
        second = await committer.store(_mail(2), None, ["support@example.se"], "smtp", "two")
        await committer.stop()
        return [first.inbound_id, second.inbound_id]

    try:
        ids = asyncio.run(scenario())
        with Session(runtime.engine) as session:
            assert sorted(row.id for row in session.exec(select(Inbound)).all()) == sorted(ids)
    finally:
        runtime.engine.dispose()
