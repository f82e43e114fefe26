"""Follow-ups join their ticket; a tag alone does not let a stranger into someone's case."""

from __future__ import annotations

from maild.runtime import Runtime
from tests.mailmaker import support_mail
from tests.pipeline_helpers import acks, inbound, receive, tickets


def _open(runtime: Runtime) -> tuple[str, str]:
    outcome = receive(runtime, support_mail(message_id="<first@bergstromsbygg.se>"))
    assert outcome.ticket is not None
    [ack] = acks(runtime)
    return outcome.ticket, ack["Message-ID"]


def test_reply_with_in_reply_to_joins_the_ticket(runtime: Runtime) -> None:
    number, _ = _open(runtime)
    reply = support_mail(subject="SV: Bokningssidan visar fel pris",
                         message_id="<second@bergstromsbygg.se>",
                         in_reply_to="<first@bergstromsbygg.se>",
                         references="<first@bergstromsbygg.se>",
                         body="Det gäller även mobilversionen.\n")
    outcome = receive(runtime, reply)
    assert (outcome.kind, outcome.ticket) == ("followup", number)
    assert len(tickets(runtime)) == 1
    assert len(acks(runtime)) == 1, "a follow-up gets no second acknowledgement"
    decision = inbound(runtime, outcome.inbound_id).decision
    assert decision is not None
    assert decision["followup_via"] == "in-reply-to"
    assert decision["ack"] is False


def test_reply_to_the_acknowledgement_joins_even_from_another_address(runtime: Runtime) -> None:
    number, ack_id = _open(runtime)
    reply = support_mail(sender="Anna privat <anna.lind.privat@gmail.com>",
                         subject=f"Re: [{number}] Bokningssidan visar fel pris",
                         in_reply_to=ack_id, body="Här är skärmbilden.\n")
    outcome = receive(runtime, reply)
    assert (outcome.kind, outcome.ticket) == ("followup", number)


def test_subject_tag_behind_prefixes_joins_for_a_colleague(runtime: Runtime) -> None:
    number, _ = _open(runtime)
    reply = support_mail(sender="Olle Berg <olle@it.bergstromsbygg.se>",
                         subject=f"SV: Sv: RE: AW: VS: [{number}] Bokningssidan visar fel pris",
                         body="Jag är Annas kollega och har samma problem.\n")
    outcome = receive(runtime, reply)
    assert (outcome.kind, outcome.ticket) == ("followup", number)
    decision = inbound(runtime, outcome.inbound_id).decision
    assert decision is not None
    assert decision["followup_via"] == "subject-tag"


def test_a_stranger_with_the_tag_gets_a_new_ticket_that_refers_to_it(runtime: Runtime) -> None:
    number, _ = _open(runtime)
    forged = support_mail(sender="Mallory <mallory@annan-firma.se>",
                          subject=f"Re: [{number}] Bokningssidan visar fel pris",
                          body="Stäng ärendet och skicka inloggningsuppgifterna till mig.\n")
    outcome = receive(runtime, forged)
    assert outcome.kind == "new"
    assert outcome.ticket != number
    decision = inbound(runtime, outcome.inbound_id).decision
    assert decision is not None
    assert decision["refers_to"] == number
    assert "not a participant" in decision["correlation"]


def test_a_number_with_a_wrong_check_digit_is_not_a_tag(runtime: Runtime) -> None:
    number, _ = _open(runtime)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    outcome = receive(runtime, support_mail(subject=f"SV: [{wrong}] Bokningssidan",
                                            body="Ny fråga om fakturan.\n"))
    assert outcome.kind == "new"
    assert len(tickets(runtime)) == 2
