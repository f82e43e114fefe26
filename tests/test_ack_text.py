# ruff: noqa: E501 - the acknowledgements' lines are as long as they are sent
"""The full text of every acknowledgement the shipped rules send, in Swedish and in English.

One case per shipped policy (and the suspended customer), received on Monday
16 November 2026 at 10:12 Swedish time, with the customers' language set to
the language under test. An English acknowledgement is English throughout:
its sender name and signature too; every time carries its zone (Nordic
Parcel's in UK time, the zone its customer file names); "around the clock"
only when the case's deadline runs around the clock; a suspended customer
asking about an invoice is asked for nothing.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from email.message import Message
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maild.intake import store_inbound
from maild.routing.load import RulesError, load_rules
from maild.runtime import Runtime, open_runtime
from tests.conftest import RULES, make_config
from tests.mailmaker import support_mail
from tests.pipeline_helpers import acks

MONDAY = datetime(2026, 11, 16, 10, 12, tzinfo=ZoneInfo("Europe/Stockholm"))

CASES = {
    "care": ("Anna Lind <anna.lind@bergstromsbygg.se>", "Bokningssidan visar fel pris",
             "När vi bokar ett rum på webbplatsen visas fel pris i kassan."),
    "itil-p1-p4": ("Karin Ek <karin@halsovaxeln.se>", "Exporten",
                   "Exporten till Excel ger fel kolumnordning för alla användare sedan "
                   "uppdateringen i fredags."),
    "office-p1-p5": ("Per Olsson <per.olsson@lindqvistlogistik.se>", "Rapport",
                     "Rapporten över lagersaldo visar fel summa för oktober när vi väljer "
                     "alla lager."),
    "around-the-clock important": ("Tom Reed <tom@nordicparcel.co.uk>", "SMS",
                                   "Our messages are not being delivered since 09:00 and the "
                                   "status page shows nothing."),
    "around-the-clock non-urgent": ("Tom Reed <tom@nordicparcel.co.uk>", "Webhooks",
                                    "We would like help with signing the delivery webhook "
                                    "requests in our integration."),
    "campaign-service": ("Eva Ström <eva.strom@smakbolaget.se>", "Kampanj",
                         "Kupongerna i kampanj 4411 skickas inte till kunderna sedan i går."),
    "no-agreement": ("Lena <lena@kafelyktan.se>", "Hemsidan",
                     "Hemsidan visar fel öppettider på startsidan sedan i helgen."),
    "suspended": ("Olle Berg <olle@fjallbygg.se>", "Faktura 10231",
                  "Vi har en fråga om faktura 10231: vi tror att den redan är betald."),
}


def _rules_in(language: str, tmp_path: Path) -> Path:
    rules = tmp_path / f"rules-{language}"
    shutil.copytree(RULES, rules)
    for path in (rules / "customers").glob("*.toml"):
        path.write_text(re.sub(r'^language = "\w+"', f'language = "{language}"',
                               path.read_text(), flags=re.MULTILINE))
    return rules


@pytest.fixture(params=["sv", "en"])
def sent(request: pytest.FixtureRequest,
         tmp_path: Path) -> Iterator[tuple[str, dict[str, Message]]]:
    """(language, {case: acknowledgement}) for every case, received on Monday 10:12."""
    language = str(request.param)
    runtime: Runtime = open_runtime(make_config(tmp_path, rules_dir=_rules_in(language, tmp_path)))
    try:
        for sender, subject, text in CASES.values():
            raw = support_mail(sender=sender, subject=subject,
                               body=f"Hej!\n\n{text}\n\nMed vänliga hälsningar\n"
                                    f"{sender.split('<', maxsplit=1)[0].strip()}\n")
            stored = store_inbound(runtime.engine, raw, transport="smtp", received_at=MONDAY,
                                   recipients=["support@example.se"])
            outcome = runtime.processor().process_now(stored.inbound_id)
            assert outcome is not None and outcome.ticket is not None
        messages = acks(runtime)
        assert len(messages) == len(CASES)
        yield language, dict(zip(CASES, messages, strict=True))
    finally:
        runtime.engine.dispose()


def _text(message: Message) -> str:
    body = message.get_content()  # type: ignore[attr-defined]
    number = message["X-Maild-Ticket"]
    return str(body).replace("\r\n", "\n").replace(number, "NUMMER")

SENDER_NAMES = {
    ("sv", "care"): "Webbsupport",
    ("sv", "itil-p1-p4"): "Teknisk support",
    ("sv", "office-p1-p5"): "Affärssystemsupport",
    ("sv", "around-the-clock important"): "Drift och meddelandetjänster",
    ("sv", "around-the-clock non-urgent"): "Drift och meddelandetjänster",
    ("sv", "campaign-service"): "Kampanjsupport",
    ("sv", "no-agreement"): "Kundsupport",
    ("sv", "suspended"): "Ekonomi och fakturor",
    ("en", "care"): "Web support",
    ("en", "itil-p1-p4"): "Technical support",
    ("en", "office-p1-p5"): "Business systems support",
    ("en", "around-the-clock important"): "Operations and messaging support",
    ("en", "around-the-clock non-urgent"): "Operations and messaging support",
    ("en", "campaign-service"): "Campaign support",
    ("en", "no-agreement"): "Customer support",
    ("en", "suspended"): "Accounts and invoicing",
}


EXPECTED = {
    ("sv", "care"): """\
Hej!

Tack för ditt mejl. Vi tog emot det måndag 16 november kl. 10:12 svensk tid och har registrerat det som ärende NUMMER.
Ärendet gäller Bergströms Bygg AB och har prioritet Normal.

Du får ett första svar senast tisdag 17 november kl. 17:00 svensk tid.

För att vi ska kunna hjälpa dig så snabbt som möjligt behöver vi även:
  - en skärmbild som visar felet
  - när felet inträffade (datum och klockslag)
  - vilken webbläsare och version du använder
  - vilket operativsystem och version du använder

Svara på det här mejlet med uppgifterna, så lägger vi till dem i ärendet.

Vill du lägga till något? Svara på det här mejlet och behåll ärendenumret i ämnesraden, så hamnar svaret i rätt ärende.

Vi arbetar med ärendet helgfria vardagar 09:00–17:00 svensk tid.

Vänliga hälsningar
Webbsupport
""",
    ("sv", "itil-p1-p4"): """\
Hej!

Tack för ditt mejl. Vi tog emot det måndag 16 november kl. 10:12 svensk tid och har registrerat det som ärende NUMMER.
Ärendet gäller Hälsoväxeln Norr AB och har prioritet P3.

Du får ett första svar senast tisdag 17 november kl. 17:00 svensk tid.

Vill du lägga till något? Svara på det här mejlet och behåll ärendenumret i ämnesraden, så hamnar svaret i rätt ärende.

Vi arbetar med ärendet helgfria vardagar 08:00–17:00 svensk tid.

Vänliga hälsningar
Teknisk support
""",
    ("sv", "office-p1-p5"): """\
Hej!

Tack för ditt mejl. Vi tog emot det måndag 16 november kl. 10:12 svensk tid och har registrerat det som ärende NUMMER.
Ärendet gäller Lindqvist Logistik AB och har prioritet P5.

Du får ett första svar senast måndag 23 november kl. 13:12 svensk tid.

Vill du lägga till något? Svara på det här mejlet och behåll ärendenumret i ämnesraden, så hamnar svaret i rätt ärende.

Vi arbetar med ärendet helgfria vardagar 08:00–17:00 svensk tid.

Vänliga hälsningar
Affärssystemsupport
""",
    ("sv", "around-the-clock important"): """\
Hej!

Tack för ditt mejl. Vi tog emot det måndag 16 november kl. 09:12 brittisk tid (GMT) och har registrerat det som ärende NUMMER.
Ärendet gäller Nordic Parcel Ltd och har prioritet important.

Vi påbörjar arbetet med ärendet senast måndag 16 november kl. 09:42 brittisk tid (GMT).
Du får ett första svar senast måndag 16 november kl. 11:12 brittisk tid (GMT).

Vill du lägga till något? Svara på det här mejlet och behåll ärendenumret i ämnesraden, så hamnar svaret i rätt ärende.

Vi arbetar med ärendet dygnet runt, alla dagar.

Vänliga hälsningar
Drift och meddelandetjänster
""",
    ("sv", "around-the-clock non-urgent"): """\
Hej!

Tack för ditt mejl. Vi tog emot det måndag 16 november kl. 09:12 brittisk tid (GMT) och har registrerat det som ärende NUMMER.
Ärendet gäller Nordic Parcel Ltd och har prioritet non-urgent.

Du får ett första svar senast tisdag 17 november kl. 09:12 brittisk tid (GMT).

Vill du lägga till något? Svara på det här mejlet och behåll ärendenumret i ämnesraden, så hamnar svaret i rätt ärende.

Vi arbetar med ärendet helgfria vardagar 09:00–17:00 svensk tid.

Vänliga hälsningar
Drift och meddelandetjänster
""",
    ("sv", "campaign-service"): """\
Hej!

Tack för ditt mejl. Vi tog emot det måndag 16 november kl. 10:12 svensk tid och har registrerat det som ärende NUMMER.
Ärendet gäller Smakbolaget Sverige AB och har prioritet Normal.

Du får ett första svar senast måndag 16 november kl. 12:12 svensk tid.

För att vi ska kunna hjälpa dig så snabbt som möjligt behöver vi även:
  - företagets namn
  - ditt namn och din befattning
  - dina kontaktuppgifter (telefonnummer)

Svara på det här mejlet med uppgifterna, så lägger vi till dem i ärendet.

Vill du lägga till något? Svara på det här mejlet och behåll ärendenumret i ämnesraden, så hamnar svaret i rätt ärende.

Vi arbetar med ärendet helgfria vardagar 09:00–17:00 svensk tid.

Vänliga hälsningar
Kampanjsupport
""",
    ("sv", "no-agreement"): """\
Hej!

Tack för ditt mejl. Vi tog emot det måndag 16 november kl. 10:12 svensk tid och har registrerat det som ärende NUMMER.
Ärendet gäller Kafé Lyktan HB och har prioritet Normal.

Vi återkommer så snart vi kan.

Vill du lägga till något? Svara på det här mejlet och behåll ärendenumret i ämnesraden, så hamnar svaret i rätt ärende.

Vi arbetar med ärendet helgfria vardagar 09:00–17:00 svensk tid.

Vänliga hälsningar
Kundsupport
""",
    ("sv", "suspended"): """\
Hej!

Tack för ditt mejl. Vi tog emot det måndag 16 november kl. 10:12 svensk tid och har registrerat det som ärende NUMMER.

Supporten för Fjällbygg i Åre AB är tillfälligt vilande. Vi hör av oss till dig om ärendet.

Vill du lägga till något? Svara på det här mejlet och behåll ärendenumret i ämnesraden, så hamnar svaret i rätt ärende.

Vänliga hälsningar
Ekonomi och fakturor
""",
    ("en", "care"): """\
Hello,

Thank you for your message. We received it on Monday 16 November at 10:12 Swedish time (CET) and registered it as case NUMMER.
It concerns Bergströms Bygg AB and has priority Normal.

You will get a first answer by Tuesday 17 November at 17:00 Swedish time (CET).

To help you as quickly as possible, we also need:
  - a screenshot that shows the error
  - when the error occurred (date and time)
  - which browser and version you are using
  - which operating system and version you are using

Reply to this message with the details and we will add them to your case.

To add anything, reply to this message and keep the case number in the subject line so that your reply reaches the right case.

We work on this case weekdays 09:00–17:00 Swedish time, except Swedish public holidays.

Kind regards
Web support
""",
    ("en", "itil-p1-p4"): """\
Hello,

Thank you for your message. We received it on Monday 16 November at 10:12 Swedish time (CET) and registered it as case NUMMER.
It concerns Hälsoväxeln Norr AB and has priority P3.

You will get a first answer by Tuesday 17 November at 17:00 Swedish time (CET).

To add anything, reply to this message and keep the case number in the subject line so that your reply reaches the right case.

We work on this case weekdays 08:00–17:00 Swedish time, except Swedish public holidays.

Kind regards
Technical support
""",
    ("en", "office-p1-p5"): """\
Hello,

Thank you for your message. We received it on Monday 16 November at 10:12 Swedish time (CET) and registered it as case NUMMER.
It concerns Lindqvist Logistik AB and has priority P5.

You will get a first answer by Monday 23 November at 13:12 Swedish time (CET).

To add anything, reply to this message and keep the case number in the subject line so that your reply reaches the right case.

We work on this case weekdays 08:00–17:00 Swedish time, except Swedish public holidays.

Kind regards
Business systems support
""",
    ("en", "around-the-clock important"): """\
Hello,

Thank you for your message. We received it on Monday 16 November at 09:12 UK time (GMT) and registered it as case NUMMER.
It concerns Nordic Parcel Ltd and has priority important.

We will start work on your case by Monday 16 November at 09:42 UK time (GMT).
You will get a first answer by Monday 16 November at 11:12 UK time (GMT).

To add anything, reply to this message and keep the case number in the subject line so that your reply reaches the right case.

We work on this case around the clock, every day.

Kind regards
Operations and messaging support
""",
    ("en", "around-the-clock non-urgent"): """\
Hello,

Thank you for your message. We received it on Monday 16 November at 09:12 UK time (GMT) and registered it as case NUMMER.
It concerns Nordic Parcel Ltd and has priority non-urgent.

You will get a first answer by Tuesday 17 November at 09:12 UK time (GMT).

To add anything, reply to this message and keep the case number in the subject line so that your reply reaches the right case.

We work on this case weekdays 09:00–17:00 Swedish time, except Swedish public holidays.

Kind regards
Operations and messaging support
""",
    ("en", "campaign-service"): """\
Hello,

Thank you for your message. We received it on Monday 16 November at 10:12 Swedish time (CET) and registered it as case NUMMER.
It concerns Smakbolaget Sverige AB and has priority Normal.

You will get a first answer by Monday 16 November at 12:12 Swedish time (CET).

To help you as quickly as possible, we also need:
  - your company's name
  - your name and job title
  - your contact details (phone number)

Reply to this message with the details and we will add them to your case.

To add anything, reply to this message and keep the case number in the subject line so that your reply reaches the right case.

We work on this case weekdays 09:00–17:00 Swedish time, except Swedish public holidays.

Kind regards
Campaign support
""",
    ("en", "no-agreement"): """\
Hello,

Thank you for your message. We received it on Monday 16 November at 10:12 Swedish time (CET) and registered it as case NUMMER.
It concerns Kafé Lyktan HB and has priority Normal.

We will get back to you as soon as we can.

To add anything, reply to this message and keep the case number in the subject line so that your reply reaches the right case.

We work on this case weekdays 09:00–17:00 Swedish time, except Swedish public holidays.

Kind regards
Customer support
""",
    ("en", "suspended"): """\
Hello,

Thank you for your message. We received it on Monday 16 November at 10:12 Swedish time (CET) and registered it as case NUMMER.

Support for Fjällbygg i Åre AB is currently on hold. We will be in touch with you about your case.

To add anything, reply to this message and keep the case number in the subject line so that your reply reaches the right case.

Kind regards
Accounts and invoicing
""",
}


def test_each_acknowledgement_reads_in_full_as_written(
        sent: tuple[str, dict[str, Message]]) -> None:
    language, messages = sent
    for case, message in messages.items():
        assert _text(message) == EXPECTED[(language, case)], case
        assert parseaddr(message["From"])[0] == SENDER_NAMES[(language, case)], case
        assert message["Content-Language"] == language


def test_an_english_acknowledgement_has_no_swedish_in_it(
        sent: tuple[str, dict[str, Message]]) -> None:
    language, messages = sent
    if language != "en":
        pytest.skip("the English run only")
    swedish = re.compile(r"[åäöÅÄÖ]|\b(?:och|svensk|vardagar|ärende|hälsningar|avtal)\b")
    for case, message in messages.items():
        text = _text(message)
        for name in ("Bergströms Bygg AB", "Hälsoväxeln Norr AB", "Kafé Lyktan HB",
                     "Fjällbygg i Åre AB"):
            text = text.replace(name, "CUSTOMER")  # a customer's own name is its own
        assert not swedish.search(text), (case, swedish.search(text))
        assert not swedish.search(message["From"]), case


def test_around_the_clock_only_when_the_deadline_runs_around_the_clock(
        sent: tuple[str, dict[str, Message]]) -> None:
    language, messages = sent
    phrase = "around the clock" if language == "en" else "dygnet runt"
    assert [case for case, message in messages.items() if phrase in _text(message)] == [
        "around-the-clock important"]


def test_the_suspended_customer_asking_about_an_invoice_is_asked_for_nothing(
        sent: tuple[str, dict[str, Message]]) -> None:
    _, messages = sent
    text = _text(messages["suspended"]).lower()
    for word in ("skärmbild", "screenshot", "webbläsare", "browser", "operativsystem",
                 "operating system", "behöver vi", "we also need"):
        assert word not in text


@pytest.mark.parametrize(("file", "old", "new", "problem"), [
    ("queues.toml", 'names = { sv = "Webbsupport", en = "Web support" }',
     'names = { de = "Web-Support" }', "queue 'web': names must map a language (sv, en)"),
    ("customers/nordic-parcel.toml", 'timezone = "Europe/London"', 'timezone = "UK"',
     "customer 'nordic-parcel': timezone 'UK' is not a time zone name"),
])
def test_rules_check_refuses_a_name_or_zone_it_cannot_use(
        tmp_path: Path, file: str, old: str, new: str, problem: str) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(RulesError) as refused:
        load_rules(rules)
    assert any(problem in str(item) for item in refused.value.problems), refused.value.problems
