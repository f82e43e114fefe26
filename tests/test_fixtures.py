"""The hand-written sample mails: each gets the decision its sidecar file expects.

All fixtures are stored and processed in file-name order into one database, as
`maild ingest fixtures/emails/` does, so follow-ups find the tickets they join.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from maild.intake import store_inbound
from maild.models import Inbound, Ticket
from maild.runtime import open_runtime
from tests.conftest import FIXTURES, make_config

FILES = sorted(FIXTURES.glob("*.eml"))


def _expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.with_suffix(".expected.json").read_text("utf-8"))
    return data


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Every fixture's stored decision (with its ticket number), by file name."""
    runtime = open_runtime(make_config(tmp_path_factory.mktemp("fixtures")))
    ids = {path.name: store_inbound(runtime.engine, path.read_bytes(), transport="file",
                                    source=str(path)).inbound_id for path in FILES}
    counts = runtime.processor().run_pending()
    assert counts["processed"] == len(FILES), counts
    with Session(runtime.engine) as session:
        numbers = {ticket.id: ticket.number for ticket in session.exec(select(Ticket))}
        decisions = {}
        for name, inbound_id in ids.items():
            row = session.get(Inbound, inbound_id)
            assert row is not None
            assert row.decision is not None
            decisions[name] = dict(row.decision, ticket_number=numbers.get(row.ticket_id))
    yield decisions
    runtime.engine.dispose()


def test_there_are_enough_fixtures() -> None:
    assert len(FILES) >= 30
    kinds = {_expected(path)["kind"] for path in FILES}
    assert {"new", "followup", "bounce", "autoreply"} <= kinds


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_fixture_decision(path: Path, processed: dict[str, dict[str, Any]]) -> None:
    expected = _expected(path)
    decision = processed[path.name]
    for key in ("kind", "ack", "sender", "sender_domain", "private", "customer", "queue"):
        assert decision[key] == expected[key], f"{key}: {decision.get('ack_reason')}"
    if expected["kind"] in ("new", "followup"):
        assert decision["language"] == expected["language"]
        assert decision["ticket_number"] is not None
    else:
        assert decision["ticket_number"] is None
    if expected["followup_of"]:
        parent = processed[expected["followup_of"]]
        assert decision["ticket_number"] == parent["ticket_number"]
    if expected.get("refers_to"):
        assert decision["refers_to"] == processed[expected["refers_to"]]["ticket_number"]
    if "trusted" in expected:
        assert decision["trust"]["trusted"] is expected["trusted"], decision["trust"]["reason"]
    if "entitlement" in expected:
        assert decision["entitlement"]["status"] == expected["entitlement"]
    if "priority" in expected:
        assert decision["priority"] == expected["priority"], decision["priority_reason"]
    if "committed" in expected:
        assert (decision["response_due"] is not None) is expected["committed"]
