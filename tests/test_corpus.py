"""Every real-world message goes through without a crash, stored byte for byte, exactly once."""

from __future__ import annotations

import hashlib
from collections import Counter

from sqlmodel import Session, select

from maild.commands.intake import Source, collect, envelope_sender_of
from maild.intake import store_inbound
from maild.models import Inbound, Outbox, Ticket
from maild.respond.maildir import MaildirTransport
from maild.respond.outbox import flush_outbox
from maild.runtime import Runtime
from tests.conftest import CORPUS
from tests.pipeline_helpers import stored_bytes


def _ingest(runtime: Runtime) -> Counter[str]:
    counts: Counter[str] = Counter()
    for source in collect([str(CORPUS)]):
        assert isinstance(source, Source), f"could not read {source}"
        stored = store_inbound(runtime.engine, source.raw, transport="file", source=source.label,
                               envelope_sender=envelope_sender_of(source.raw))
        counts["duplicates" if stored.duplicate else "stored"] += 1
    counts.update(runtime.processor().run_pending())
    return counts


def test_the_whole_corpus_is_stored_exactly_and_processed(runtime: Runtime) -> None:
    files = sorted(CORPUS.glob("*/*.eml"))
    contents = {path: path.read_bytes() for path in files}
    counts = _ingest(runtime)
    distinct = {hashlib.sha256(raw).hexdigest() for raw in contents.values()}

    # Identical files are one message (the corpus has a few byte-identical copies).
    assert counts["stored"] + counts["duplicates"] == len(files)
    assert counts["stored"] == len(distinct)
    assert counts["processed"] == counts["stored"], counts
    with Session(runtime.engine) as session:
        stored = {hashlib.sha256(stored_bytes(runtime, row.id)).hexdigest(): row
                  for row in session.exec(select(Inbound))}
        for path, raw in contents.items():
            row = stored.get(hashlib.sha256(raw).hexdigest())
            assert row is not None, f"{path.name} was not stored"
            assert stored_bytes(runtime, row.id) == raw, f"{path.name} was not stored byte for byte"
            assert row.size == len(raw)
            assert row.state in ("processed", "quarantined"), (path.name, row.state)
            assert row.decision is not None, f"{path.name} has no decision record"
        tickets = len(session.exec(select(Ticket)).all())
        outbox = len(session.exec(select(Outbox)).all())

    report = flush_outbox(runtime.engine, MaildirTransport(runtime.config.outbox_maildir))
    assert report.sent == outbox

    again = _ingest(runtime)
    assert again["stored"] == 0
    assert again["duplicates"] == len(files)
    with Session(runtime.engine) as session:
        assert len(session.exec(select(Ticket)).all()) == tickets
        assert len(session.exec(select(Outbox)).all()) == outbox
    assert flush_outbox(runtime.engine, MaildirTransport(runtime.config.outbox_maildir)).sent == 0
