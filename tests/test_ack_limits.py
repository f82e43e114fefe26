"""Acknowledgement limits count mailboxes and domains, never strings; entitled senders are
always confirmed; only a verified sender sees its own subject again.
"""

from __future__ import annotations

import json
from email.message import Message

from sqlmodel import Session, col, select

from maild.addresses import mailbox_key
from maild.intake import store_inbound
from maild.models import Outbox
from maild.runtime import Runtime
from tests.conftest import MaildCLI
from tests.mailmaker import support_mail
from tests.pipeline_helpers import acks, inbound, receive

# ITSL (seed 003_aa41acb3d3d4827d.txt), the agreement of Hälsoväxeln Norr: every mail is
# confirmed with its case number, whatever the rate.
ITSL_PROMISE = ("Inkommande ärenden via e-post registreras automatiskt i vårt ärendesystem för "
                "spårbarhet, och ni får en bekräftelse med ett ärendenummer för enkel "
                "uppföljning.")
VICTIM = "victim@victim.example"


def _burst(runtime: Runtime, mails: list[tuple[bytes, str | None]]) -> None:
    for raw, envelope in mails:
        store_inbound(runtime.engine, raw, transport="smtp", envelope_sender=envelope)
    counts = runtime.processor().run_pending()
    assert counts["processed"] == len(mails)


def _ack_rows(runtime: Runtime) -> list[Outbox]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Outbox).where(col(Outbox.purpose) == "ack")
                                 .order_by(col(Outbox.id))).all())


def _case(index: int, sender: str, *, subject: str = "Fråga", extra: dict[str, str] | None = None,
          body: str = "Vi har ett problem med tjänsten, ärende") -> bytes:
    return support_mail(sender=sender, subject=f"{subject} {index}",
                        body=f"{body} nummer {index}.\n", headers=extra)


def test_a_burst_of_a_thousand_variants_reaches_one_mailbox_at_most_the_hourly_limit(
        sqlite_runtime: Runtime) -> None:
    """Issue 11: +tag, case variants and Reply-To let 98-100 acks reach one mailbox."""
    mails: list[tuple[bytes, str | None]] = []
    for index in range(1000):
        variant = index % 4
        if variant == 0:
            raw = _case(index, f"victim+{index}@victim.example")
        elif variant == 1:
            raw = _case(index, "VICTIM@Victim.Example" if index % 8 == 1 else
                        "Victim@VICTIM.example")
        elif variant == 2:
            raw = _case(index, f"attacker{index}@evil{index}.example",
                        extra={"Reply-To": f"Victim+{index}@victim.EXAMPLE"})
        else:
            raw = _case(index, f"a{index}@evil{index}.example",
                        extra={"Reply-To": "victim@VICTIM.example"})
        mails.append((raw, None))
    _burst(sqlite_runtime, mails)
    to_victim = [row for row in _ack_rows(sqlite_runtime) if mailbox_key(row.recipient) == VICTIM]
    assert len(to_victim) == sqlite_runtime.config.ack_max_per_hour == 5
    assert {row.mailbox for row in to_victim} == {VICTIM}


def test_one_domain_is_limited_across_its_mailboxes(sqlite_runtime: Runtime) -> None:
    limit = sqlite_runtime.config.ack_domain_max_per_hour
    _burst(sqlite_runtime, [(_case(index, f"person{index}@stranger-company.example"), None)
                            for index in range(limit + 5)])
    rows = _ack_rows(sqlite_runtime)
    assert len(rows) == limit == 30
    last = inbound(sqlite_runtime, limit + 5).decision
    assert last is not None and last["ack"] is False
    assert "for the domain stranger-company.example in the last hour" in last["ack_reason"]


def test_a_free_mail_provider_has_no_domain_limit(sqlite_runtime: Runtime) -> None:
    count = sqlite_runtime.config.ack_domain_max_per_hour + 3
    _burst(sqlite_runtime, [(_case(index, f"private.person{index}@gmail.com"), None)
                            for index in range(count)])
    assert len(_ack_rows(sqlite_runtime)) == count


def test_an_unknown_sender_is_limited_per_mailbox(sqlite_runtime: Runtime) -> None:
    _burst(sqlite_runtime, [(_case(index, f"Kim+{index}@Stranger-Company.example"), None)
                            for index in range(8)])
    rows = _ack_rows(sqlite_runtime)
    assert len(rows) == 5
    assert {row.mailbox for row in rows} == {"kim@stranger-company.example"}
    last = inbound(sqlite_runtime, 8).decision
    assert last is not None
    assert last["ack_reason"] == ("rate limit: 5 acknowledgements to the mailbox "
                                  "kim@stranger-company.example in the last hour (at most 5)")


def test_itsl_every_distinct_case_of_an_entitled_sender_is_confirmed(
        sqlite_runtime: Runtime) -> None:
    """ITSL: "... ni får en bekräftelse med ett ärendenummer för enkel uppföljning"."""
    count = sqlite_runtime.config.ack_max_per_day + 5
    _burst(sqlite_runtime, [(_case(index, "Eva Berg <eva.berg@halsovaxeln.se>",
                                   subject="Meddelanden fastnar",
                                   body=f"{ITSL_PROMISE} Meddelanden fastnar i kön"), None)
                            for index in range(count)])
    rows = _ack_rows(sqlite_runtime)
    assert len(rows) == count, "no distinct case of an entitled sender goes unconfirmed"
    decision = inbound(sqlite_runtime, count).decision
    assert decision is not None
    assert decision["customer"] == "halsovaxeln" and decision["entitled_sender"] is True
    assert decision["ack_reason"].startswith("new ticket from a person; every case is confirmed:")
    numbers = [ack["X-Maild-Ticket"] for ack in acks(sqlite_runtime)]
    assert len(set(numbers)) == count
    assert all(f"[{number}]" in str(ack["Subject"])
               for number, ack in zip(numbers, acks(sqlite_runtime), strict=True))


def test_a_registered_contact_is_confirmed_beyond_the_limits(sqlite_runtime: Runtime) -> None:
    count = sqlite_runtime.config.ack_max_per_hour + 3
    _burst(sqlite_runtime, [(_case(index, "Anna Lind <anna.lind@bergstromsbygg.se>"), None)
                            for index in range(count)])
    assert len(_ack_rows(sqlite_runtime)) == count


def test_the_same_text_from_an_entitled_sender_is_confirmed_once(
        sqlite_runtime: Runtime) -> None:
    sender = "eva.berg@halsovaxeln.se"
    for variant in (sender, "Eva.Berg+igen@Halsovaxeln.se", sender):
        receive(sqlite_runtime, support_mail(sender=variant, subject="Igen",
                                             body=f"{ITSL_PROMISE}\n"))
    assert len(_ack_rows(sqlite_runtime)) == 1


def test_a_reply_to_outside_the_customer_is_limited(sqlite_runtime: Runtime) -> None:
    _burst(sqlite_runtime, [(_case(index, "anna.lind@bergstromsbygg.se",
                                   extra={"Reply-To": f"victim+{index}@victim.example"}), None)
                            for index in range(8)])
    rows = _ack_rows(sqlite_runtime)
    assert [mailbox_key(row.recipient) for row in rows] == [VICTIM] * 5


def test_a_reply_to_at_the_customers_own_domain_is_owed_the_confirmation(
        sqlite_runtime: Runtime) -> None:
    _burst(sqlite_runtime, [(_case(index, "eva.berg@halsovaxeln.se",
                                   extra={"Reply-To": "it-helpdesk@halsovaxeln.se"}), None)
                            for index in range(8)])
    assert len(_ack_rows(sqlite_runtime)) == 8


def test_no_agreement_and_private_senders_are_not_entitled(sqlite_runtime: Runtime) -> None:
    for sender in ("kim@stranger-company.example", "private.person@gmail.com"):
        outcome = receive(sqlite_runtime, support_mail(sender=sender, subject=f"Hej {sender}",
                                                       body=f"En fråga från {sender}.\n"))
        decision = inbound(sqlite_runtime, outcome.inbound_id).decision
        assert decision is not None
        # authenticated (their own words may come back to them), but owed nothing
        assert (decision["entitled_sender"], decision["verified_sender"]) == (False, True)


# --- the subject is the sender's text -------------------------------------------------------


def _subject(ack: Message) -> str:
    return str(ack["Subject"])


def test_an_unverified_sender_never_sees_its_subject_again(sqlite_runtime: Runtime) -> None:
    phish = "Ditt konto är spärrat, logga in på http://phish.example"
    for sender in ("kim@stranger-company.example", "kollega@bergstromsbygg.se"):
        outcome = receive(sqlite_runtime, support_mail(sender=sender, subject=phish,
                                                       body=f"Hej från {sender}.\n",
                                                       authenticated=False))
        decision = inbound(sqlite_runtime, outcome.inbound_id).decision
        assert decision is not None and decision["verified_sender"] is False
        subject = _subject(acks(sqlite_runtime)[-1])
        assert subject == f"[{outcome.ticket}] Vi har tagit emot ditt ärende"
        assert "phish" not in subject


def test_an_english_unverified_sender_gets_english_words(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(
        sender="Tom Hughes <tom@nordicparcel.co.uk>", subject="Click http://phish.example",
        body="Hi, since this morning we get no delivery reports for our SMS. Regards, Tom\n",
        authenticated=False))
    assert _subject(acks(sqlite_runtime)[0]) == f"[{outcome.ticket}] We have received your case"


def test_a_verified_sender_sees_its_own_subject(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(subject="Bokningssidan visar fel pris"))
    decision = inbound(sqlite_runtime, outcome.inbound_id).decision
    assert decision is not None and decision["verified_sender"] is True
    assert decision["verified_by"] == ("anna.lind@bergstromsbygg.se is an authenticated, "
                                       "registered contact of bergstroms-bygg")
    assert _subject(acks(sqlite_runtime)[0]) == f"[{outcome.ticket}] Bokningssidan visar fel pris"


def test_route_json_shows_the_senders_standing(maild: MaildCLI) -> None:
    message = maild.cwd / "mail.eml"
    message.write_bytes(support_mail(sender="Kim <Kim+x@Stranger-Company.example>",
                                     authenticated=False))
    result = maild("route", str(message), "--json")
    assert result.code == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["sender"] == "kim+x@stranger-company.example"
    assert (decision["verified_sender"], decision["entitled_sender"]) == (False, False)
    assert decision["ack"] is True
