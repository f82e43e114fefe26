"""The command line as a person reads it: counts, no wrapped ticket numbers, one labelled time
zone, readable values, decoded outgoing mail, sane --at; staff replies and web users."""

from __future__ import annotations

import email
import email.policy
import json
import re

import pytest

from tests.conftest import MaildCLI
from tests.mailmaker import support_mail


@pytest.fixture
def three_tickets(maild: MaildCLI) -> list[str]:
    """Three tickets from three senders, numbers in order of arrival."""
    numbers = []
    for index, sender in enumerate(("Anna Lind <anna.lind@bergstromsbygg.se>",
                                    "Maria Holm <maria.holm@lindqvistlogistik.se>",
                                    "Per <per@bergstromsbygg.se>")):
        result = maild("deliver", "--process", input=support_mail(sender=sender,
                                                     subject=f"Ärende {index} om fakturan"))
        assert result.code == 0, result.stderr
        numbers.append(result.stdout.strip())
    return numbers


def test_lists_say_how_many_they_show_and_take_all(maild: MaildCLI,
                                                    three_tickets: list[str]) -> None:
    limited = maild("tickets", "--limit", "2")
    assert "showing 2 of 3 tickets" in limited.stdout
    data = json.loads(maild("tickets", "--limit", "2", "--json").stdout)
    assert (data["shown"], data["total"], len(data["tickets"])) == (2, 3, 2)
    everything = json.loads(maild("tickets", "--limit", "1", "--all", "--json").stdout)
    assert (everything["shown"], everything["total"]) == (3, 3)
    inbound = json.loads(maild("inbound", "list", "--limit", "1", "--json").stdout)
    assert (inbound["shown"], inbound["total"], len(inbound["messages"])) == (1, 3, 1)
    table = maild("inbound", "list", "--limit", "1")
    assert "showing 1 of 3 stored messages" in table.stdout
    assert "Europe/Stockholm" in table.stdout
    assert len(json.loads(maild("inbound", "list", "--all", "--json").stdout)["messages"]) == 3


@pytest.mark.parametrize("columns", ["100", "120"])
def test_ticket_numbers_never_wrap(maild: MaildCLI, three_tickets: list[str],
                                   columns: str) -> None:
    out = maild("tickets", extra_env={"COLUMNS": columns}).stdout
    for number in three_tickets:
        assert number in out, out
    assert max(len(line) for line in out.splitlines()) <= int(columns)
    assert "Europe/Stockholm" in out


def test_ticket_show_prints_readable_text(maild: MaildCLI, three_tickets: list[str]) -> None:
    out = maild("ticket", "show", three_tickets[0]).stdout
    assert not re.search(r"\['|\{'|': ", out), out
    assert "missing: " in out and "Europe/Stockholm" in out


def test_outbox_show_decodes_the_text(maild: MaildCLI, three_tickets: list[str]) -> None:
    out = maild("outbox", "show", "1").stdout
    assert "Tack för" in out or "Thank you" in out
    assert "=C3=B6" not in out and "=?utf-8?" not in out
    raw = maild("outbox", "show", "1", "--raw").raw_stdout
    assert b"Message-ID:" in raw


def test_respond_at_before_the_ticket_existed_is_refused(maild: MaildCLI,
                                                         three_tickets: list[str]) -> None:
    result = maild("ticket", "respond", three_tickets[0], "--at", "2020-01-01T10:00+01:00")
    assert result.code == 1
    assert "before" in result.stderr and three_tickets[0] in result.stderr
    shown = json.loads(maild("ticket", "show", three_tickets[0], "--json").stdout)
    assert shown["first_response_at"] is None


def test_ticket_reply_is_threaded_tagged_and_stops_the_first_response_clock(
        maild: MaildCLI, three_tickets: list[str]) -> None:
    number = three_tickets[0]
    before = json.loads(maild("ticket", "show", number, "--json").stdout)
    opening = next(m for m in before["messages"] if m["role"] == "opening")
    result = maild("ticket", "reply", number, "Hej Anna, vi har rättat priset.", "--by", "Eva")
    assert result.code == 0, result.stderr
    assert "queued for anna.lind@bergstromsbygg.se" in result.stdout
    after = json.loads(maild("ticket", "show", number, "--json").stdout)
    assert after["status"] == "answered" and after["first_response_at"] is not None
    assert [e["kind"] for e in after["events"]][-2:] == ["response", "status"]
    reply = next(m for m in after["messages"] if m["role"] == "reply")
    raw = maild("outbox", "show", str(reply["outbox_id"]), "--raw").raw_stdout
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"].startswith(f"[{number}]")
    assert message["In-Reply-To"] == f"<{opening['message_id']}>"
    assert f"<{opening['message_id']}>" in message["References"]
    assert message["X-Maild-Ticket"] == number
    assert message["Auto-Submitted"] is None
    assert "vi har rättat priset" in message.get_body().get_content()
    empty = maild("ticket", "reply", number, "   ")
    assert empty.code == 1 and "needs some text" in empty.stderr


def test_web_users_are_added_listed_changed_and_removed(maild: MaildCLI) -> None:
    added = maild("user", "add", "agnes", "--role", "agent", "--queues", "web,support",
                  "--password-stdin", input=b"ett-langt-losenord\n")
    assert added.code == 0, added.stderr
    assert maild("user", "add", "agnes", "--role", "admin", "--password-stdin",
                 input=b"ett-langt-losenord\n").code == 1
    unknown = maild("user", "add", "bo", "--role", "agent", "--queues", "nosuch",
                    "--password-stdin", input=b"ett-langt-losenord\n")
    assert unknown.code == 1 and "no queue nosuch" in unknown.stderr
    short = maild("user", "add", "bo", "--role", "admin", "--password-stdin", input=b"kort\n")
    assert short.code == 1 and "at least 10 characters" in short.stderr
    listed = json.loads(maild("user", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["queues"]) for u in listed] == [
        ("agnes", "agent", ["web", "support"])]
    assert maild("user", "passwd", "agnes", "--password-stdin",
                 input=b"ett-annat-losenord\n").code == 0
    assert maild("user", "remove", "agnes").code == 0
    assert maild("user", "remove", "agnes").code == 1
    assert json.loads(maild("user", "list", "--json").stdout) == []
