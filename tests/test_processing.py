"""Processing survives crashes: retried, then quarantined after three, never lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import maild.processing as processing_module
from maild.intake import store_inbound
from maild.models import utcnow
from maild.runtime import Runtime
from tests.conftest import ROOT
from tests.mailmaker import support_mail
from tests.pipeline_helpers import acks, inbound, receive, stored_bytes, tickets


def test_a_new_message_becomes_a_ticket_with_an_acknowledgement(runtime: Runtime) -> None:
    outcome = receive(runtime, support_mail(), sender="anna.lind@bergstromsbygg.se")
    assert outcome.state == "processed"
    assert outcome.kind == "new"
    [ticket] = tickets(runtime)
    assert ticket.number == outcome.ticket
    assert (ticket.customer, ticket.queue, ticket.policy) == ("bergstroms-bygg", "web", "care")
    assert ticket.decision is not None
    assert ticket.decision["ticket"] == ticket.number
    [ack] = acks(runtime)
    assert ack["To"] == "anna.lind@bergstromsbygg.se"
    assert ticket.number in ack["Subject"]


def test_crash_is_retried_then_quarantined_on_the_third(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = support_mail()
    stored = store_inbound(runtime.engine, raw, transport="smtp")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected crash while applying the decision")

    monkeypatch.setattr(processing_module, "apply_decision", crash)
    processor = runtime.processor()
    for attempt in (1, 2):
        counts = processor.run_pending()
        assert counts["received"] == 1, f"attempt {attempt} should leave it to retry"
        row = inbound(runtime, stored.inbound_id)
        assert (row.state, row.attempts) == ("received", attempt)
        assert "injected crash" in (row.last_error or "")
    counts = processor.run_pending()
    assert counts["quarantined"] == 1
    row = inbound(runtime, stored.inbound_id)
    assert row.state == "quarantined"
    assert row.last_error is not None
    assert row.last_error.startswith("processing failed 3 times")
    assert stored_bytes(runtime, row.id) == raw
    assert tickets(runtime) == []
    assert acks(runtime) == []
    assert processor.run_pending() == {}, "a quarantined message is not crash-looped"

    monkeypatch.undo()
    from maild.commands.common import Context
    from maild.commands.views import quarantine_retry

    context = Context(runtime.config)
    context._runtime = runtime
    import argparse

    assert quarantine_retry(context, argparse.Namespace(ids=[stored.inbound_id], all=False)) == 0
    assert inbound(runtime, stored.inbound_id).state == "processed"
    assert len(tickets(runtime)) == 1
    assert len(acks(runtime)) == 1


def test_a_process_killed_mid_way_is_recovered_after_the_lease(runtime: Runtime) -> None:
    stored = store_inbound(runtime.engine, support_mail(), transport="smtp")
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        import maild.processing as p
        from maild.runtime import open_runtime
        from tests.conftest import make_config
        from pathlib import Path
        def die(*a, **k):
            os._exit(9)
        p.apply_decision = die
        runtime = open_runtime(make_config(Path({str(runtime.config.data_dir.parent)!r}),
                                           {runtime.config.database_url!r}))
        runtime.processor().run_pending()
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 9
    row = inbound(runtime, stored.inbound_id)
    assert (row.state, row.attempts) == ("processing", 1)

    processor = runtime.processor()
    assert processor.run_pending() == {}, "the lease of the dead process has not run out yet"
    processor.clock = lambda: utcnow() + timedelta(minutes=6)
    counts = processor.run_pending()
    assert counts["processed"] == 1
    assert len(tickets(runtime)) == 1


def test_a_poison_message_does_not_use_up_the_attempts_of_its_batch(
        runtime: Runtime) -> None:
    poison = store_inbound(runtime.engine, support_mail(subject="gift"), transport="smtp")
    innocent = store_inbound(runtime.engine, support_mail(subject="oskyldig"), transport="smtp")
    processor = runtime.processor()
    # The first claim takes both, and the process dies in the poison message.
    assert processor.claim_batch(size=10) == [poison.inbound_id, innocent.inbound_id]
    for death in range(1, 4):
        later = utcnow() + timedelta(minutes=6) * death
        processor.clock = lambda moment=later: moment
        if death < 3:
            # Tried before, so each is retried alone: the poison one first, and it dies again.
            assert processor.claim_batch(size=10) == [poison.inbound_id]
    assert processor.claim_batch(size=10) == [innocent.inbound_id]
    assert inbound(runtime, poison.inbound_id).state == "quarantined"
    assert inbound(runtime, innocent.inbound_id).attempts == 2
    assert processor.process(innocent.inbound_id).state == "processed"


def test_a_batch_of_fresh_messages_is_claimed_with_one_statement(runtime: Runtime) -> None:
    from sqlalchemy import event

    ids = [store_inbound(runtime.engine, support_mail(subject=f"Fel {index}"),
                         transport="smtp").inbound_id for index in range(5)]
    processor = runtime.processor()
    # The second one was tried before and given back: it is claimed alone, after the
    # fresh ones before it, which are claimed together.
    processor.claim_batch(only_id=ids[1])
    processor.release([ids[1]])
    updates: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute",
                 lambda *args: updates.append(args[2]) if args[2].startswith("UPDATE") else None)
    moment = utcnow()
    processor.clock = lambda: moment
    assert processor.claim_batch(size=10) == [ids[0]]
    assert len(updates) == 1
    assert processor.claim_batch(size=10) == [ids[1]]
    assert processor.claim_batch(size=10) == ids[2:]
    assert len(updates) == 3, updates
    rows = [inbound(runtime, inbound_id) for inbound_id in ids]
    assert [(row.state, row.attempts) for row in rows] == [("processing", 1), ("processing", 2),
                                                           *[("processing", 1)] * 3]
    assert {row.claimed_until for row in rows} == {moment + processor.lease}
    assert processor._claims == {ids[0]: 1, ids[1]: 2, ids[2]: 1, ids[3]: 1, ids[4]: 1}


def test_dead_three_times_means_quarantine(runtime: Runtime) -> None:
    stored = store_inbound(runtime.engine, support_mail(), transport="smtp")
    processor = runtime.processor()
    for death in range(1, 4):
        assert processor.claim() == stored.inbound_id  # counts the attempt; then the process dies
        assert inbound(runtime, stored.inbound_id).attempts == death
        later = utcnow() + timedelta(minutes=6) * death
        processor.clock = lambda moment=later: moment
    assert processor.claim() is None
    row = inbound(runtime, stored.inbound_id)
    assert row.state == "quarantined"
    assert "the process stopped while processing it" in (row.last_error or "")


def test_unparseable_message_is_quarantined_with_its_bytes(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import maild.parse as parse_module

    def broken(*args: object) -> None:
        raise RuntimeError("cannot read")

    monkeypatch.setattr(parse_module.mailparser, "MailParser", broken)
    monkeypatch.setattr(parse_module, "_bodies_with_stdlib", broken)
    raw = b"From: a@kund.se\r\n\r\n\x00\xff"
    outcome = receive(runtime, raw)
    assert outcome.state == "quarantined"
    assert outcome.kind == "unparseable"
    row = inbound(runtime, outcome.inbound_id)
    assert stored_bytes(runtime, row.id) == raw
    assert row.decision is not None
    assert row.decision["kind"] == "unparseable"
    assert row.decision["ack"] is False
    assert tickets(runtime) == []


def test_a_worker_killed_in_the_middle_of_a_batch_loses_nothing_and_doubles_nothing(
        runtime: Runtime, tmp_path: Path) -> None:
    count = 160
    for index in range(count):
        store_inbound(runtime.engine, support_mail(
            subject=f"Fel nummer {index}",
            body=f"Hej!\n\nFel nummer {index} syns i kassan sedan i morse.\n\nAnna Lind\n"),
            transport="smtp")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from maild.runtime import open_runtime
        from tests.conftest import make_config
        runtime = open_runtime(make_config(Path({str(runtime.config.data_dir.parent)!r}),
                                           {runtime.config.database_url!r},
                                           **{{"processing.batch_size": 16}}))
        runtime.processor().run_pending()
    """)
    worker = subprocess.Popen([sys.executable, "-c", script],
                              env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed once a batch is committed and the next one is claimed, before it commits.
    from sqlalchemy import text
    deadline = time.monotonic() + 120
    killed_in: set[int] = set()
    with runtime.engine.connect() as connection:
        while time.monotonic() < deadline and worker.poll() is None:
            states = dict(connection.execute(text(
                "SELECT state, count(*) FROM inbound GROUP BY state")).all())
            if states.get("processed", 0) >= 16 and states.get("processing", 0):
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(30)
                killed_in = {row[0] for row in connection.execute(text(
                    "SELECT id FROM inbound WHERE state = 'processing'"))}
                break
            connection.rollback()
            time.sleep(0.002)
    assert worker.returncode == -signal.SIGKILL, "the worker was not caught inside a batch"
    assert killed_in, "no message was held by the killed worker"
    assert all(row.state == "processing" and row.ticket_id is None
               for row in (inbound(runtime, inbound_id) for inbound_id in killed_in)), \
        "nothing of the interrupted batch is committed"

    processor = runtime.processor()
    processor.clock = lambda: utcnow() + timedelta(minutes=6)  # the dead worker's lease ran out
    while processor.run_pending():
        pass
    made = tickets(runtime)
    assert len(made) == count, "every message made exactly one ticket"
    assert sorted(int(ticket.number.split("-")[2]) for ticket in made) == \
        list(range(1, count + 1)), "ticket numbers stay dense"
    rows = [inbound(runtime, index) for index in range(1, count + 1)]
    assert {row.state for row in rows} == {"processed"}
    assert {row.attempts for row in rows if row.id in killed_in} == {2}, \
        "the interrupted batch was retried, one message at a time"
    assert {row.attempts for row in rows if row.id not in killed_in} == {1}
    per_ticket = Counter(ack["X-Maild-Ticket"] for ack in acks(runtime))
    assert per_ticket and max(per_ticket.values()) == 1, "no acknowledgement was queued twice"


def test_a_processor_whose_claim_was_taken_over_commits_nothing(runtime: Runtime) -> None:
    stored = store_inbound(runtime.engine, support_mail(), transport="smtp")
    slow, other = runtime.processor(), runtime.processor()
    assert slow.claim() == stored.inbound_id
    # The slow one's lease runs out (no heartbeat renewed it) and another claims the message.
    other.clock = lambda: utcnow() + timedelta(minutes=6)
    assert other.claim() == stored.inbound_id
    late = slow.process(stored.inbound_id)
    assert late.state == "claim_lost"
    assert tickets(runtime) == [] and acks(runtime) == [], "the late work was rolled back"
    assert other.process(stored.inbound_id).state == "processed"
    assert len(tickets(runtime)) == 1 and len(acks(runtime)) == 1


def test_a_batch_commits_after_each_message_while_intake_waits_for_the_turn(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from maild.write_turns import WriteTurns

    ids = [store_inbound(runtime.engine, support_mail(subject=f"Fel {index}",
                                                      body=f"Fel nummer {index}.\n"),
                         transport="smtp").inbound_id for index in range(5)]
    processor = runtime.processor()
    transactions: list[list[int]] = []
    real = processor._transaction

    def counted(inbound_ids: list[int], *args: object, **kwargs: object
                ) -> list[processing_module.Outcome]:
        transactions.append(list(inbound_ids))
        return real(inbound_ids, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(processor, "_transaction", counted)
    monkeypatch.setattr(WriteTurns, "wanted", lambda self: True)  # intake always waiting
    monkeypatch.setattr(WriteTurns, "let_urgent_go_first", lambda self, timeout=1.0: None)
    assert processor.claim_batch(size=10) == ids
    outcomes = processor.process_batch(ids)
    assert [outcome.state for outcome in outcomes] == ["processed"] * 5
    assert transactions == [ids[index:] for index in range(5)], "one commit a message"
    assert len(tickets(runtime)) == 5


def _claims_during_turns(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, count: int,
                         size: int) -> tuple[Any, list[bool]]:
    """`count` stored mails and a processor of batches of `size`; for each of its claims,
    whether the write turn was held already when it began."""
    from maild.write_turns import write_turns

    for index in range(count):
        store_inbound(runtime.engine, support_mail(subject=f"Fel {index}",
                                                   body=f"Fel nummer {index}.\n"),
                      transport="smtp")
    processor = runtime.processor()
    processor.batch_size = size
    held: list[bool] = []
    real = processor.claim_batch

    def claim_batch(**kwargs: Any) -> list[int]:
        held.append(write_turns(runtime.engine).held())
        return real(**kwargs)

    monkeypatch.setattr(processor, "claim_batch", claim_batch)
    return processor, held


def test_the_next_batch_is_claimed_in_the_turn_that_commits_a_batch(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process does not wait a whole turn for its next claim, leaving the lock idle while
    it then reads: other processes at the same database hold the turn meanwhile."""
    processor, held = _claims_during_turns(sqlite_runtime, monkeypatch, count=5, size=2)
    counts = processor.run_pending()
    assert counts["processed"] == 5 and len(tickets(sqlite_runtime)) == 5
    # batches of 2, 2 and 1, then the claim that finds nothing: each after the first was
    # made in the turn that committed the batch before it
    assert held == [False, True, True, True]


def test_no_next_claim_while_intake_waits_or_past_the_pass_limit(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from maild.write_turns import WriteTurns

    processor, held = _claims_during_turns(sqlite_runtime, monkeypatch, count=5, size=2)
    assert processor.run_pending(limit=3)["processed"] == 3
    assert held == [False, True], "the pass ends at its limit: no claim past it"
    held.clear()
    monkeypatch.setattr(WriteTurns, "wanted", lambda self: True)  # intake always waiting
    monkeypatch.setattr(WriteTurns, "let_urgent_go_first", lambda self, timeout=1.0: None)
    assert processor.run_pending()["processed"] == 2
    assert held == [False, False], "intake goes first: the claim waits for a turn of its own"


def test_rules_broken_after_the_next_claim_give_that_batch_back(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    processor, _ = _claims_during_turns(sqlite_runtime, monkeypatch, count=4, size=2)
    good = processor.rules
    calls = 0

    def rules() -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:  # the first batch's reading, the next claim's check, then: broken
            raise ValueError("rules/customers.yaml: broken")
        return good()

    monkeypatch.setattr(processor, "rules", rules)
    with pytest.raises(ValueError, match="broken"):
        processor.run_pending()
    states = Counter(inbound(sqlite_runtime, inbound_id).state for inbound_id in range(1, 5))
    assert states == Counter({"processed": 2, "received": 2}), "claimed, never tried: given back"
    monkeypatch.setattr(processor, "rules", good)
    assert processor.run_pending()["processed"] == 2


def test_a_batch_logs_its_outcomes_after_its_write_turn(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing the log (a line per message, JSON in production) does not hold up intake."""
    from maild.write_turns import write_turns

    processor, _ = _claims_during_turns(sqlite_runtime, monkeypatch, count=3, size=2)
    logged: list[tuple[str, int, bool]] = []
    turns = write_turns(sqlite_runtime.engine)

    class Bound:
        def __init__(self, inbound_id: int) -> None:
            self.inbound_id = inbound_id

        def info(self, event: str, **fields: Any) -> None:
            logged.append((event, self.inbound_id, turns.held()))

    class Log:
        def bind(self, inbound_id: int) -> Bound:
            return Bound(inbound_id)

    monkeypatch.setattr(processing_module, "log", Log())
    assert processor.run_pending()["processed"] == 3
    assert logged == [("inbound.processed", 1, False), ("inbound.processed", 2, False),
                      ("inbound.processed", 3, False)]


def _original_and_reply(runtime: Runtime) -> tuple[int, int]:
    original = store_inbound(runtime.engine, support_mail(
        message_id="<original-7@bergstromsbygg.se>"), transport="smtp").inbound_id
    reply = store_inbound(runtime.engine, support_mail(
        subject="Re: Bokningssidan visar fel pris", body="Det gäller mobilen också.\n",
        message_id="<reply-7@bergstromsbygg.se>", in_reply_to="<original-7@bergstromsbygg.se>",
        references="<original-7@bergstromsbygg.se>"), transport="smtp").inbound_id
    assert original is not None and reply is not None
    return original, reply


def test_a_reply_waits_for_its_original_in_another_processors_batch(
        sqlite_runtime: Runtime) -> None:
    """Two processes a batch each: the reply's batch is ready first, but is decided after
    the original's commit, so the reply joins the ticket its original opens."""
    import threading

    original, reply = _original_and_reply(sqlite_runtime)
    first, second = sqlite_runtime.processor(), sqlite_runtime.processor()
    assert first.claim_batch(size=1) == [original]
    assert second.claim_batch(after_id=original, size=1) == [reply]
    opened: list[processing_module.Outcome] = []
    late = threading.Timer(0.4, lambda: opened.extend(first.process_batch([original])))
    late.start()
    followed = second.process_batch([reply])
    late.join()
    assert opened[0].kind == "new" and followed[0].kind == "followup"
    assert followed[0].ticket == opened[0].ticket
    assert len(tickets(sqlite_runtime)) == 1


def test_a_reply_waits_for_its_original_only_so_long(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that died holding the original (its lease not yet run out) holds up the
    reply for `EARLIER_WAIT` at most; the reply is then decided without it."""
    monkeypatch.setattr(processing_module, "EARLIER_WAIT", 0.3)
    original, reply = _original_and_reply(sqlite_runtime)
    dead, alive = sqlite_runtime.processor(), sqlite_runtime.processor()
    dead.heartbeat = None  # dead: nothing renews its lease (nor outlives the test)
    assert dead.claim_batch(size=1) == [original]
    started = time.monotonic()
    counts = alive.run_pending()
    assert 0.3 <= time.monotonic() - started < 5
    assert counts["kind:new"] == 1 and inbound(sqlite_runtime, reply).state == "processed"
    assert inbound(sqlite_runtime, original).state == "processing"


def test_a_hostile_references_header_is_not_looked_for_whole(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replies naming a thousand messages each: the batch looks for each one's In-Reply-To and
    newest References only, not for tens of thousands of Message-IDs."""
    asked: list[list[str]] = []
    real = processing_module._NAMED_IN_FLIGHT.run

    def run(connection: Any, parameters: dict[str, Any]) -> Any:
        asked.append(list(parameters["named"]))
        return real(connection, parameters)

    monkeypatch.setattr(processing_module._NAMED_IN_FLIGHT, "run", run)
    for index in range(4):
        references = " ".join(f"<old-{index}-{number}@elsewhere.example>"
                              for number in range(3000))
        store_inbound(sqlite_runtime.engine, support_mail(
            subject=f"Re: Fel {index}", body="Fortfarande fel.\n",
            in_reply_to=f"<answered-{index}@bergstromsbygg.se>", references=references),
            transport="smtp")
    assert sqlite_runtime.processor().run_pending()["processed"] == 4
    assert len(asked) == 1 and len(asked[0]) <= 4 * processing_module.ORIGINALS_LOOKED_FOR
    assert {f"answered-{index}@bergstromsbygg.se" for index in range(4)} <= set(asked[0])


def test_a_batch_goes_on_when_its_originals_cannot_be_looked_for(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait for originals is a courtesy to the thread: its failure fails no message."""
    original, reply = _original_and_reply(sqlite_runtime)

    def fails(connection: Any, parameters: dict[str, Any]) -> Any:
        raise RuntimeError("too many SQL variables")

    monkeypatch.setattr(processing_module._NAMED_IN_FLIGHT, "run", fails)
    counts = sqlite_runtime.processor().run_pending()
    assert counts["processed"] == 2 and counts["kind:followup"] == 1
    assert inbound(sqlite_runtime, original).state == "processed"
    assert inbound(sqlite_runtime, reply).state == "processed"


def test_a_reply_does_not_wait_for_an_original_its_own_processor_holds(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processing_module, "EARLIER_WAIT", 5.0)
    original, reply = _original_and_reply(sqlite_runtime)
    processor = sqlite_runtime.processor()
    assert processor.claim_batch(size=2) == [original, reply]
    started = time.monotonic()
    assert processor.process_batch([reply])[0].state == "processed"
    assert time.monotonic() - started < 2.5, "it would have waited for itself"
    assert processor.process_batch([original])[0].state == "processed"
    assert processor.heartbeat is not None and not processor.heartbeat.held()


def test_a_next_claim_that_fails_is_made_again_in_a_turn_of_its_own(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch is committed before the next claim: its failure loses nothing, and the
    pass's own claim (which would raise, were the database really gone) goes on."""
    processor, held = _claims_during_turns(sqlite_runtime, monkeypatch, count=4, size=2)
    claim = processor.claim_batch

    def fails_once(**kwargs: Any) -> list[int]:
        if len(held) == 1:
            held.append(True)
            raise RuntimeError("database is locked")
        return claim(**kwargs)

    monkeypatch.setattr(processor, "claim_batch", fails_once)
    assert processor.run_pending()["processed"] == 4
    assert held[:3] == [False, True, False], "failed in the turn, then claimed on its own"
    assert len(tickets(sqlite_runtime)) == 4


def test_a_next_claim_that_fails_after_its_writes_is_rolled_back_alone(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim made in a batch's transaction fails once it has written: its savepoint is
    rolled back, the batch is committed, and the messages are claimed again on their own,
    each with one attempt counted."""
    processor, held = _claims_during_turns(runtime, monkeypatch, count=4, size=2)
    claim = processor.claim_batch

    def fails_once_written(**kwargs: Any) -> list[int]:
        claimed = claim(**kwargs)
        if len(held) == 2:
            held.append(True)
            raise RuntimeError("the connection went away")
        return claimed

    monkeypatch.setattr(processor, "claim_batch", fails_once_written)
    assert processor.run_pending()["processed"] == 4
    assert True in held, "the failure happened"
    assert len(tickets(runtime)) == 4
    rows = [inbound(runtime, inbound_id) for inbound_id in range(1, 5)]
    assert [(row.state, row.attempts) for row in rows] == [("processed", 1)] * 4


def _store_three(runtime: Runtime) -> None:
    for index in range(3):
        store_inbound(runtime.engine, support_mail(subject=f"Fel {index}",
                                                   body=f"Fel nummer {index}.\n"),
                      transport="smtp")


def _intake_stores_during(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, module: Any,
                          name: str) -> tuple[list[bool], list[Any]]:
    """Make the first call of `module.name` wait for intake to store a mail from another
    thread: (whether intake had to wait for more than 5 s, what it stored)."""
    import threading

    from maild.intake import Arrival, store_batch

    stored_meanwhile: list[Any] = []
    intake_waited: list[bool] = []
    real = getattr(module, name)

    def call_while_intake_stores(*args: Any, **kwargs: Any) -> Any:
        if not intake_waited:
            arrival = Arrival(support_mail(subject="Under tiden", body="Kom under tiden.\n"),
                              "smtp", "anna.lind@bergstromsbygg.se", ["support@example.se"])
            intake = threading.Thread(target=lambda: stored_meanwhile.extend(
                store_batch(runtime.engine, [arrival])))
            intake.start()
            intake.join(timeout=5)
            intake_waited.append(not stored_meanwhile)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, call_while_intake_stores)
    return intake_waited, stored_meanwhile


def _processed_while_intake_stores(runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
                                   module: Any, name: str, what: str) -> None:
    """Three stored mails processed while intake stores a fourth during `module.name`:
    intake did not wait, and the fourth is processed after the batch."""
    from maild.intake import Stored

    _store_three(runtime)
    intake_waited, stored_meanwhile = _intake_stores_during(runtime, monkeypatch, module, name)
    counts = runtime.processor().run_pending()
    assert intake_waited == [False], f"intake had to wait while processing {what}"
    assert isinstance(stored_meanwhile[0], Stored)
    assert counts["processed"] == 4, "the mail stored meanwhile is processed after the batch"
    assert len(tickets(runtime)) == 4


def test_intake_stores_while_a_batch_is_parsed(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch parses its mail before it takes the write turn: intake need not wait for that."""
    _processed_while_intake_stores(sqlite_runtime, monkeypatch, processing_module,
                                   "parse_mail", "parsed")


def test_intake_stores_while_a_batch_is_read(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a decision concludes without the database (the required items checked here) is
    worked out before the batch takes the write turn: intake need not wait for it either."""
    import maild.reading as reading_module

    _processed_while_intake_stores(sqlite_runtime, monkeypatch, reading_module,
                                   "check_items", "checked items")
    assert all(ticket.missing for ticket in tickets(sqlite_runtime)), \
        "the checks' results were used"


@pytest.mark.parametrize("beside_listeners", [False, True])
def test_a_message_is_read_before_the_write_turn_unless_beside_the_listeners(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch, beside_listeners: bool
        ) -> None:
    """Processing of its own reads a batch before its turn; processing in the daemon's own
    process (no worker processes) reads each message in its turn, so that no long stretch
    of pure Python holds the GIL that the listeners' event loop needs."""
    import maild.reading as reading_module
    from maild.runtime import make_processor
    from maild.write_turns import write_turns

    runtime = sqlite_runtime
    _store_three(runtime)
    turns = write_turns(runtime.engine)
    in_turn: list[bool] = []
    real_check = reading_module.check_items

    def note_the_turn(*args: Any, **kwargs: Any) -> Any:
        in_turn.append(turns.held())
        return real_check(*args, **kwargs)

    monkeypatch.setattr(reading_module, "check_items", note_the_turn)
    processor = make_processor(runtime.config, runtime.engine, lambda: runtime.rules,
                               beside_listeners=beside_listeners)
    assert processor.run_pending()["processed"] == 3
    assert in_turn == [beside_listeners] * 3
    assert all(ticket.missing for ticket in tickets(runtime))


def test_a_row_sent_without_waiting_that_fails_fails_its_own_message(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a ticket's rows whose keys nobody reads are sent in a pipeline: the error
    of one comes back late, but still within its own message, which is rolled back and
    retried alone; the message after it in the batch is processed."""
    import maild.tickets.service as service_module

    poison = store_inbound(runtime.engine, support_mail(subject="Giftigt", body="Giftigt.\n"),
                           transport="smtp")
    mate = store_inbound(runtime.engine, support_mail(subject="Vanligt", body="Vanligt fel.\n"),
                         transport="smtp")
    real_send_row = service_module.send_row

    def refer_nowhere_for_poison(session: Any, model: Any, **values: Any) -> None:
        if values.get("subject") == "Giftigt":
            values["ticket_id"] = 10**9  # no such ticket: the foreign key refuses it
        real_send_row(session, model, **values)

    monkeypatch.setattr(service_module, "send_row", refer_nowhere_for_poison)
    counts = runtime.processor().run_pending()
    assert counts["processed"] == 1 and counts["received"] == 1, counts
    row = inbound(runtime, poison.inbound_id)
    assert (row.state, row.attempts) == ("received", 1)
    assert "ForeignKey" in (row.last_error or "") or "FOREIGN KEY" in (row.last_error or "")
    assert inbound(runtime, mate.inbound_id).state == "processed"
    assert [ticket.subject for ticket in tickets(runtime)] == ["Vanligt"]


def _traced(runtime: Runtime) -> list[str]:
    """The SQL statements of every connection `runtime` makes from here on (SQLite)."""
    from sqlalchemy import event

    statements: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    event.listen(runtime.engine, "connect", trace)
    runtime.engine.dispose()
    return statements


def test_a_batch_in_which_no_message_fails_sets_no_savepoint(sqlite_runtime: Runtime) -> None:
    """A savepoint makes SQLite copy every page its message changes to a temporary file, to
    undo the message should it fail: a batch in which none fails is spared that work."""
    statements = _traced(sqlite_runtime)
    for number in range(3):
        store_inbound(sqlite_runtime.engine, support_mail(subject=f"Fel {number}"),
                      transport="smtp")
    assert sqlite_runtime.processor().run_pending()["processed"] == 3
    assert sum(statement.startswith("INSERT INTO ticket ") for statement in statements) == 3
    assert [statement for statement in statements if "SAVEPOINT maild_message" in statement] \
        == []


def test_the_next_claim_is_committed_with_the_batch_before_it(sqlite_runtime: Runtime) -> None:
    """Five mails in batches of two: the pass's first claim is committed on its own, each
    later one with the batch it follows (the last claim finds nothing), in a savepoint."""
    for number in range(5):
        store_inbound(sqlite_runtime.engine, support_mail(subject=f"Fel {number}"),
                      transport="smtp")
    statements = _traced(sqlite_runtime)
    processor = sqlite_runtime.processor()
    processor.batch_size = 2
    assert processor.run_pending()["processed"] == 5
    assert len(tickets(sqlite_runtime)) == 5
    assert statements.count("COMMIT") == 4, "one commit a batch, and the first claim's"
    assert statements.count("SAVEPOINT maild_claim") == 3
    assert statements.count("RELEASE SAVEPOINT maild_claim") == 3
    states = {inbound(sqlite_runtime, inbound_id).state for inbound_id in range(1, 6)}
    assert states == {"processed"}


def test_a_message_failing_mid_batch_leaves_its_batch_mates_committed_once(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch is rolled back and done again, a savepoint for each message: the failing
    message is recorded alone, and each of the others has one ticket, one acknowledgement,
    one outcome in the log, and the ticket number it would have had anyway."""
    subjects = ("Först", "Giftigt", "Sist")
    stored = [store_inbound(runtime.engine, support_mail(
        subject=subject, body=f"{subject}: kassan visar fel pris sedan i morse.\n"),
        transport="smtp") for subject in subjects]
    real_apply = processing_module.apply_decision

    def fail_on_poison(session: Any, stored: Any, mail: Any, *args: Any, **kwargs: Any) -> Any:
        if mail.subject == "Giftigt":
            raise RuntimeError("injected failure applying the decision")
        return real_apply(session, stored, mail, *args, **kwargs)

    monkeypatch.setattr(processing_module, "apply_decision", fail_on_poison)
    events: list[tuple[str, int | None]] = []
    real_log = processing_module.log

    class Bound:
        def __init__(self, inbound_id: int) -> None:
            self.inbound_id = inbound_id

        def __getattr__(self, level: str) -> Any:
            return lambda event, **fields: events.append((event, self.inbound_id))

    class Log:
        def bind(self, inbound_id: int) -> Bound:
            return Bound(inbound_id)

        def __getattr__(self, level: str) -> Any:
            def note(event: str, **fields: Any) -> None:
                events.append((event, fields.get("inbound_id")))
                getattr(real_log, level)(event, **fields)
            return note

    monkeypatch.setattr(processing_module, "log", Log())
    counts = runtime.processor().run_pending()
    assert (counts["processed"], counts["received"]) == (2, 1), counts
    first, poison, last = (inbound(runtime, item.inbound_id) for item in stored)
    assert (first.state, last.state) == ("processed", "processed")
    assert (poison.state, poison.attempts) == ("received", 1)
    assert "injected failure" in (poison.last_error or "")
    assert [ticket.subject for ticket in tickets(runtime)] == ["Först", "Sist"]
    numbers = [ticket.number for ticket in tickets(runtime)]
    assert [number.split("-")[2] for number in numbers] == ["00001", "00002"], numbers
    assert sorted(ack["Subject"].split("]")[0] for ack in acks(runtime)) == sorted(
        f"[{number}" for number in numbers)
    assert events == [
        ("processing.batch_redone", poison.id),
        ("inbound.processed", first.id), ("inbound.retry_later", poison.id),
        ("inbound.processed", last.id)], events


def test_a_reading_that_fails_ahead_fails_in_its_turn_and_is_recorded(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A message whose reading raises before the write turn is not lost in the read-ahead:
    the decision asks again, the failure is recorded on the message (retried, then
    quarantined), and its batch-mates are processed."""
    import maild.reading as reading_module

    poison = store_inbound(runtime.engine, support_mail(subject="Giftigt", body="Giftigt.\n"),
                           transport="smtp")
    mate = store_inbound(runtime.engine, support_mail(subject="Vanligt", body="Vanligt fel.\n"),
                         transport="smtp")
    real_check = reading_module.check_items
    calls: Counter[str] = Counter()

    def fail_on_poison(mail: Any, items: Any, **kwargs: Any) -> Any:
        calls[mail.subject] += 1
        if mail.subject == "Giftigt":
            raise RuntimeError("injected failure in a check")
        return real_check(mail, items, **kwargs)

    monkeypatch.setattr(reading_module, "check_items", fail_on_poison)
    processor = runtime.processor()
    counts = processor.run_pending()
    assert counts["processed"] == 1 and counts["received"] == 1, counts
    # Asked ahead of the turn, then by the decision, and by the decision again when the
    # batch is done again with a savepoint per message.
    assert calls["Giftigt"] == 3, calls
    row = inbound(runtime, poison.inbound_id)
    assert (row.state, row.attempts) == ("received", 1)
    assert "injected failure in a check" in (row.last_error or "")
    assert inbound(runtime, mate.inbound_id).state == "processed"
    processor.run_pending()
    processor.run_pending()
    row = inbound(runtime, poison.inbound_id)
    assert row.state == "quarantined"
    assert (row.last_error or "").startswith("processing failed 3 times")
    assert [ticket.subject for ticket in tickets(runtime)] == ["Vanligt"]
