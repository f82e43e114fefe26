"""Routing by the sender's real domain: subdomains, suffixes, IDN, case, display names, contacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from maild.envelope import Envelope, identity_of
from maild.models import utcnow
from maild.parse import parse_mail
from maild.pipeline import decide
from maild.routing.load import load_rules
from maild.routing.model import Rules
from maild.tickets.correlate import NoTickets
from maild.tickets.numbering import TicketNumbering
from tests.conftest import RULES, MaildCLI
from tests.mailmaker import support_mail

SHIPPED = load_rules(RULES)


def route(sender: str, to: str = "support@example.se", rules: Rules = SHIPPED) -> dict[str, Any]:
    raw = support_mail(sender=sender, to=to)
    decision = decide(parse_mail(raw), Envelope(None, (to,), utcnow()), rules,
                      lookup=NoTickets(), numbering=TicketNumbering(),
                      identity=identity_of(rules, None))
    return decision.to_json()


@pytest.mark.parametrize(("sender", "customer", "domain"), [
    ("erik@it.bergstromsbygg.se", "bergstroms-bygg", "bergstromsbygg.se"),
    ("jonas@mail.lindqvistlogistik.se", "lindqvist-logistik", "lindqvistlogistik.se"),
    ("tom@nordicparcel.co.uk", "nordic-parcel", "nordicparcel.co.uk"),
    ("ops@eu.mail.nordicparcel.co.uk", "nordic-parcel", "nordicparcel.co.uk"),
    ("Anna.Lind@BERGSTROMSBYGG.SE", "bergstroms-bygg", "bergstromsbygg.se"),
    ("bjorn@xn--rksmrgs-5wao1o.se", "raksmorgas", "räksmörgås.se"),
    ("bjorn@XN--RKSMRGS-5WAO1O.SE", "raksmorgas", "räksmörgås.se"),
    ("linnea@räksmörgås.se", "raksmorgas", "räksmörgås.se"),
    ("linnea@meny.RÄKSMÖRGÅS.SE", "raksmorgas", "räksmörgås.se"),
])
def test_customer_domains_cover_subdomains_suffixes_idn_and_case(
        sender: str, customer: str, domain: str) -> None:
    decision = route(sender)
    assert (decision["customer"], decision["sender_domain"]) == (customer, domain)
    assert decision["private"] is False
    assert decision["customer"] == customer


def test_a_look_alike_under_a_multipart_suffix_is_not_the_customer() -> None:
    decision = route("x@otherparcel.co.uk")
    assert decision["customer"] is None and decision["queue"] == "triage"


def test_display_name_tricks_do_not_route() -> None:
    decision = route('"anna.lind@bergstromsbygg.se" <anna.lind.bygg@gmail.com>')
    assert decision["sender"] == "anna.lind.bygg@gmail.com"
    assert decision["customer"] is None
    assert decision["private"] is True
    assert (decision["policy"], decision["queue"]) == ("no-agreement", "triage")
    assert "private address at gmail.com" in decision["route_reason"]


def test_a_registered_contact_on_a_private_address_reaches_the_customer() -> None:
    decision = route("Johan Bergström <Johan.Bergstrom62@Gmail.com>")
    assert decision["customer"] == "bergstroms-bygg"
    assert decision["private"] is True
    assert decision["queue"] == "web" and decision["priority"] == "Normal"
    assert decision["rules_tried"][0] == {
        "rule": "registered-contact", "matched": True,
        "detail": "johan.bergstrom62@gmail.com is registered contact Johan Bergström of "
                  "bergstroms-bygg"}


@pytest.mark.parametrize("sender", ["kalle@hotmail.se", "bengt@telia.com", "x@bredband.net",
                                    "y@mail.comhem.se"])
def test_a_private_sender_who_is_no_contact_is_not_prioritised(sender: str) -> None:
    decision = route(sender)
    assert decision["private"] is True and decision["customer"] is None
    assert (decision["policy"], decision["queue"]) == ("no-agreement", "triage")
    assert decision["priority"] == SHIPPED.policies["no-agreement"].lowest_priority
    assert decision["priority_reason"] == "private sender: lowest priority (not prioritised)"


def test_the_admins_private_list_is_added(tmp_path: Path) -> None:
    local = tmp_path / "rules"
    shutil.copytree(RULES, local)
    (local / "private-domains.txt").write_text("# lokala\nposten.se\n")
    assert route("p@posten.se")["private"] is False
    assert route("p@posten.se", rules=load_rules(local))["private"] is True


def test_unknown_domain_takes_the_no_agreement_route() -> None:
    decision = route("info@okand-firma.se")
    assert decision["customer"] is None and decision["private"] is False
    assert (decision["policy"], decision["queue"]) == ("no-agreement", "triage")
    assert decision["route_reason"] == "unknown sender domain okand-firma.se: no-agreement route"


def test_suspended_customer_is_ticketed_and_routed_as_the_rules_say() -> None:
    decision = route("goran@fjallbygg.se")
    assert (decision["customer"], decision["customer_status"]) == ("fjallbygg", "suspended")
    assert decision["queue"] == "billing"
    assert decision["ack"] is True


def test_a_known_customer_without_agreement() -> None:
    decision = route("info@kafelyktan.se")
    assert (decision["customer"], decision["policy"], decision["queue"]) == (
        "kafe-lyktan", "no-agreement", "triage")


@pytest.mark.parametrize(("to", "queue"), [
    ("support@example.se", "campaigns"),
    ("support+kampanj@example.se", "campaigns"),
    ("teknik@example.se", "tech"),
    ("Teknik+natt@Example.se", "tech"),
])
def test_queue_per_support_address(to: str, queue: str) -> None:
    assert route("sara@smakbolaget.se", to=to)["queue"] == queue


def test_served_addresses_and_sub_addresses() -> None:
    assert SHIPPED.support_address("support+webb@example.se") is not None
    assert SHIPPED.support_address("SUPPORT@EXAMPLE.SE") is not None
    assert SHIPPED.support_address("info@example.se") is None
    assert SHIPPED.support_address("support@example.com") is None


def test_every_decision_names_the_rules_version() -> None:
    assert route("x@okand.se")["rules_version"] == SHIPPED.version


def test_rules_explain_command(maild: MaildCLI) -> None:
    text = maild("rules", "explain", "Erik@IT.BergstromsBygg.se", "--to", "support+webb@example.se")
    assert text.code == 0
    assert "matched      customer-domain: sender domain bergstromsbygg.se belongs to " \
           "bergstroms-bygg" in text.stdout
    assert "not matched  registered-contact" in text.stdout
    assert "queue: web" in text.stdout and "private: no" in text.stdout
    data = json.loads(maild("rules", "explain", "kalle@hotmail.se", "--json").stdout)
    assert (data["private"], data["queue"], data["customer"]) == (True, "triage", None)
    assert [step["rule"] for step in data["rules_tried"]] == [
        "registered-contact", "private-sender", "no-agreement"]
    refused = maild("rules", "explain", "x@kund.se", "--to", "info@example.se")
    assert refused.code == 1
    assert "maild does not serve info@example.se" in refused.stderr
    assert maild("rules", "explain", "not-an-address").code == 1


def test_rules_show_json_lists_addresses(maild: MaildCLI) -> None:
    data = json.loads(maild("rules", "show", "--json").stdout)
    assert [a["address"] for a in data["addresses"]] == [
        "support@example.se", "teknik@example.se", "faktura@example.se"]
    assert {c["id"] for c in data["customers"]} >= {"bergstroms-bygg", "nordic-parcel"}
    assert data["private_domains"] > 4000
