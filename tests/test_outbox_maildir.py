"""The Maildir outbox: files synced one by one, `new/` once per batch, before "sent" is recorded."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from maild.models import Outbox, utcnow
from maild.respond.maildir import MaildirTransport
from maild.respond.outbox import flush_outbox
from maild.runtime import Runtime


def _queue(runtime: Runtime, count: int) -> None:
    with Session(runtime.engine) as session:
        for index in range(count):
            session.add(Outbox(purpose="ack", envelope_sender="",
                               message_id=f"maildir-{index}@example.se",
                               recipient=f"kund{index}@bergstromsbygg.se",
                               raw=f"Subject: {index}\r\n\r\nHej\r\n".encode(),
                               created_at=utcnow()))
        session.commit()


def test_a_batch_syncs_each_file_and_the_folder_once(
        sqlite_runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _queue(sqlite_runtime, 10)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    maildir = tmp_path / "outbox"
    transport = MaildirTransport(maildir)
    monkeypatch.setattr(os, "fsync", fsync)
    assert flush_outbox(sqlite_runtime.engine, transport).sent == 10
    monkeypatch.undo()
    folders = [path for path in synced if Path(path) == maildir / "new"]
    assert len(folders) == 1, synced
    assert len(synced) == 11, "every file is synced before it is renamed into new/"
    assert len(list((maildir / "new").iterdir())) == 10


class FolderSyncFailsOnce(MaildirTransport):
    """A Maildir whose first sync of `new/` fails, as on a failing disk."""

    failed = False

    def settle(self) -> None:
        if not self.failed:
            self.failed = True
            raise OSError(5, "Input/output error")
        super().settle()


def test_items_whose_folder_could_not_be_synced_are_retried_not_recorded_sent(
        sqlite_runtime: Runtime, tmp_path: Path) -> None:
    _queue(sqlite_runtime, 3)
    transport = FolderSyncFailsOnce(tmp_path / "outbox")
    report = flush_outbox(sqlite_runtime.engine, transport)
    assert (report.sent, report.retried) == (0, 3)
    with Session(sqlite_runtime.engine) as session:
        items = session.exec(select(Outbox)).all()
        assert {item.state for item in items} == {"queued"}
        assert all("Input/output error" in (item.last_error or "") for item in items)
    later = utcnow() + timedelta(hours=2)  # past every retry delay, well within the lifetime
    report = flush_outbox(sqlite_runtime.engine, transport, now=later)
    assert report.sent == 3
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 3
    with Session(sqlite_runtime.engine) as session:
        items = session.exec(select(Outbox)).all()
        assert {(item.state, item.attempts) for item in items} == {("sent", 2)}
        assert [entry["result"] for entry in items[0].history] == ["retried", "sent"]


class CountingMaildir(MaildirTransport):
    """A Maildir that counts how often it looks for an earlier delivery."""

    lookups = 0

    def delivered(self, item_id: int) -> bool:
        self.lookups += 1
        return super().delivered(item_id)


def test_a_first_try_does_not_list_what_a_mail_client_has_read(
        sqlite_runtime: Runtime, tmp_path: Path) -> None:
    maildir = tmp_path / "outbox"
    (maildir / "cur").mkdir(parents=True)
    for index in range(300):  # messages a mail client has read: listing them costs
        (maildir / "cur" / f"read-{index}:2,S").touch()
    _queue(sqlite_runtime, 5)
    transport = CountingMaildir(maildir)
    assert flush_outbox(sqlite_runtime.engine, transport).sent == 5
    assert transport.lookups == 0, "no earlier copy can exist of an item on its first try"
    assert len(list((maildir / "new").iterdir())) == 5


def test_an_item_tried_before_is_still_found_where_a_mail_client_moved_it(
        sqlite_runtime: Runtime, tmp_path: Path) -> None:
    """Its sender wrote it and died before recording it; a mail client has read it since."""
    maildir = tmp_path / "outbox"
    _queue(sqlite_runtime, 1)
    with Session(sqlite_runtime.engine) as session:
        [item] = session.exec(select(Outbox)).all()
        item.state, item.attempts = "sending", 1  # claimed once, its lease run out
        item.claimed_until = utcnow() - timedelta(minutes=1)
        session.add(item)
        session.commit()
        assert item.id is not None
        item_id = item.id
    transport = CountingMaildir(maildir)
    first = Path(transport.deliver_first(item_id, b"Subject: 0\r\n\r\nHej\r\n"))
    first.rename(maildir / "cur" / f"{first.name}:2,S")
    assert flush_outbox(sqlite_runtime.engine, transport).sent == 1
    assert transport.lookups == 1
    assert list((maildir / "new").iterdir()) == [], "not written a second time"
    assert [path.name for path in (maildir / "cur").iterdir()] == [f"{first.name}:2,S"]
