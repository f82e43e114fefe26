"""Broken rules are refused with `file:line` and a sentence an admin understands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from maild.models import Ticket
from maild.routing.load import ID_LENGTH, PRIORITY_LENGTH, RulesError, load_rules
from maild.runtime import open_runtime
from tests.conftest import RULES, MaildCLI, make_config
from tests.pipeline_helpers import receive, tickets


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped rules, to break."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def problems(directory: Path) -> list[str]:
    with pytest.raises(RulesError) as error:
        load_rules(directory)
    return [str(problem) for problem in error.value.problems]


def customer(name: str, body: str, directory: Path) -> Path:
    path = directory / "customers" / f"{name}.toml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD = 'name = "Acme AB"\ndomains = ["acme.se"]\npolicy = "care"\nqueue = "web"\n'


def test_the_shipped_rules_are_valid() -> None:
    rules = load_rules(RULES)
    assert len(rules.policies) == 6 and len(rules.customers) >= 6
    assert {a.address for a in rules.addresses} == {"support@example.se", "teknik@example.se",
                                                    "faktura@example.se"}


def test_syntax_error(rules_dir: Path) -> None:
    path = customer("acme", 'name = "Acme AB"\ndomains = ["acme.se"\npolicy = "care"\n', rules_dir)
    [problem] = problems(rules_dir)
    assert problem.startswith(f"{path}:3: TOML syntax error")


def test_duplicate_key(rules_dir: Path) -> None:
    path = customer("acme", GOOD + 'queue = "erp"\n', rules_dir)
    [problem] = problems(rules_dir)
    assert problem.startswith(f"{path}:5: TOML syntax error: a key or table is defined twice")


def test_domain_claimed_by_two_customers(rules_dir: Path) -> None:
    path = customer("acme", GOOD.replace("acme.se", "bergstromsbygg.se"), rules_dir)
    other = rules_dir / "customers" / "bergstroms-bygg.toml"
    assert problems(rules_dir) == [
        f"{other}:3: customer 'bergstroms-bygg': domain 'bergstromsbygg.se' is already claimed "
        f"by customer 'acme' ({path}:2)"]


def test_unknown_policy_and_queue(rules_dir: Path) -> None:
    path = customer("acme", GOOD.replace('"care"', '"gold"').replace('"web"', '"vip"'),
                    rules_dir)
    found = problems(rules_dir)
    assert f"{path}:3: customer 'acme': unknown policy 'gold' (defined: around-the-clock, " \
           "campaign-service, care, itil-p1-p4, no-agreement, office-p1-p5)" in found
    assert any(p.startswith(f"{path}:4: customer 'acme': unknown queue 'vip'") for p in found)


def test_malformed_contact_address(rules_dir: Path) -> None:
    path = customer("acme", GOOD + '\n[[contact]]\naddress = "anna at acme.se"\nname = "Anna"\n',
                    rules_dir)
    assert problems(rules_dir) == [
        f"{path}:7: customer 'acme': contact address 'anna at acme.se' is not a valid e-mail "
        "address"]


@pytest.mark.parametrize(("domain", "sentence"), [
    ("acme", "'acme' is not a valid domain name"),
    ("acme..se", "'acme..se' is not a valid domain name"),
    ("co.uk", "'co.uk' is a public suffix, not a company's domain"),
    ("gmail.com", "'gmail.com' is a private mail provider; register the person as a "
                  "[[contact]] instead"),
])
def test_bad_domains(rules_dir: Path, domain: str, sentence: str) -> None:
    path = customer("acme", GOOD.replace("acme.se", domain), rules_dir)
    assert problems(rules_dir) == [f"{path}:2: customer 'acme': {sentence}"]


def test_contact_cap_exceeded(rules_dir: Path) -> None:
    path = rules_dir / "customers" / "lindqvist-logistik.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '\n[[contact]]\naddress = "tredje@lindqvistlogistik.se"\n'
                    'name = "Tredje Person"\n', encoding="utf-8")
    line = text.splitlines().index("[[contact]]") + 1
    assert problems(rules_dir) == [
        f"{path}:{line}: customer 'lindqvist-logistik' has 3 contacts, but policy "
        "'office-p1-p5' allows at most 2"]


def test_unknown_key_is_a_typo(rules_dir: Path) -> None:
    path = customer("acme", GOOD + 'langauge = "sv"\n', rules_dir)
    [problem] = problems(rules_dir)
    assert problem.startswith(f"{path}:5: customer 'acme': unknown key 'langauge' (allowed:")


def test_bad_status_and_language(rules_dir: Path) -> None:
    path = customer("acme", GOOD + 'status = "paused"\nlanguage = "de"\n', rules_dir)
    assert problems(rules_dir) == [
        f"{path}:6: customer 'acme': 'language' is 'de', expected one of: sv, en",
        f"{path}:5: customer 'acme': 'status' is 'paused', expected one of: active, suspended, "
        "no-agreement",
    ]


def test_policy_problems(rules_dir: Path) -> None:
    path = rules_dir / "policies" / "gold.toml"
    path.write_text('name = "Gold"\nhours = "weekdays 9-5"\npriorities = ["High", "Low"]\n'
                    'default_priority = "Medium"\nrequired = ["screenshot", "horoscope"]\n'
                    '\n[priority.High]\nresponse = "2 hours"\n', encoding="utf-8")
    found = problems(rules_dir)
    assert f"{path}:2: policy 'gold': hours 'weekdays 9-5' is not of the form " \
           "'mon-fri 09:00-17:00' (parts separated by ;) or '24/7'" in found
    assert f"{path}:4: policy 'gold': default_priority 'Medium' is not one of priorities " \
           "(High, Low)" in found
    assert any(p.startswith(f"{path}:5: policy 'gold': unknown required item 'horoscope'")
               for p in found)
    assert f"{path}:8: policy 'gold', priority High: response '2 hours' is not a target: " \
           "write minutes (30m), hours (2h), business days (1bd) or none" in found
    assert f"{path}:3: policy 'gold': priority 'Low' has no [priority.Low] table with its " \
           "response target" in found


def test_support_address_problems(rules_dir: Path) -> None:
    path = rules_dir / "addresses.toml"
    path.write_text('[[address]]\naddress = "support@example.se"\nqueue = "support"\n\n'
                    '[[address]]\naddress = "Support@Example.se"\nqueue = "support"\n\n'
                    '[[address]]\naddress = "help@"\nqueue = "nowhere"\n', encoding="utf-8")
    found = problems(rules_dir)
    assert f"{path}:6: support address 'Support@Example.se' is listed twice" in found
    assert f"{path}:10: 'help@' is not a valid e-mail address" in found


def test_queue_for_an_address_maild_does_not_serve(rules_dir: Path) -> None:
    path = customer("acme", GOOD + '\n[queue_by_address]\n"info@example.se" = "tech"\n',
                    rules_dir)
    assert problems(rules_dir) == [
        f"{path}:7: customer 'acme': queue_by_address names 'info@example.se', which is not a "
        "served support address"]


def test_template_syntax_error(rules_dir: Path) -> None:
    path = rules_dir / "templates" / "ack.sv.txt"
    path.write_text("Hej!\n\nÄrende {{ ticket }\n", encoding="utf-8")
    [problem] = problems(rules_dir)
    assert problem.startswith(f"{path}:3: template syntax error")


def test_missing_file_and_bad_private_domain(rules_dir: Path) -> None:
    (rules_dir / "routing.toml").unlink()
    (rules_dir / "private-domains.txt").write_text("# egna\nposten.se\nnot a domain\n")
    found = problems(rules_dir)
    assert f"{rules_dir / 'routing.toml'}: file is missing; maild needs it to route mail" in found
    assert f"{rules_dir / 'private-domains.txt'}:3: 'not a domain' is not a valid domain name" \
        in found


def test_every_problem_is_reported_in_one_pass(rules_dir: Path) -> None:
    customer("acme", GOOD.replace('"care"', '"gold"') + 'colour = "blue"\n', rules_dir)
    customer("beta", GOOD.replace("acme.se", "beta.se").replace('"web"', '"vip"'), rules_dir)
    assert len(problems(rules_dir)) == 3


def test_rules_check_command_exit_codes(maild: MaildCLI, rules_dir: Path) -> None:
    customer("acme", GOOD.replace("acme.se", "bergstromsbygg.se"), rules_dir)
    result = maild("rules", "check", str(rules_dir))
    assert result.code == 78
    assert "is already claimed by customer 'acme'" in result.stderr
    assert "1 problem; maild will not use these rules" in result.stderr
    processing = maild("--rules-dir", str(rules_dir), "route", str(
        next((RULES.parent / "fixtures" / "emails").glob("01-*.eml"))))
    assert processing.code == 78
    assert "have problems" in processing.stderr


# -- what a ticket keeps of the rules' names ------------------------------------------------

def test_the_name_lengths_checked_are_the_columns_a_ticket_keeps_them_in() -> None:
    columns = Ticket.__table__.columns  # type: ignore[attr-defined]
    assert {columns[name].type.length for name in ("customer", "policy", "queue")} == {
        ID_LENGTH}
    assert columns["priority"].type.length == PRIORITY_LENGTH


def _priority_named(level: str, directory: Path) -> Path:
    """The care policy with its `High` level renamed `level` (its markers unchanged)."""
    path = directory / "policies" / "care.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"High"', f'"{level}"').replace(
        "[priority.High]", f'[priority."{level}"]'), encoding="utf-8")
    return path


def test_names_longer_than_a_ticket_keeps_are_refused(rules_dir: Path) -> None:
    level = "Hög – verksamheten står helt still"       # 34 characters
    policy = _priority_named(level, rules_dir)
    long_id = "a" * (ID_LENGTH + 1)
    shutil.copy(policy, rules_dir / "policies" / f"{long_id}.toml")
    customer(long_id, GOOD, rules_dir)
    (rules_dir / "queues.toml").write_text(
        (rules_dir / "queues.toml").read_text(encoding="utf-8")
        + f'\n[{long_id}]\nname = "Lång"\nteam = ["anna@{".".join(["d" * 60] * 5)}.se"]\n',
        encoding="utf-8")
    found = problems(rules_dir)
    assert f"{policy}:9: policy 'care': priority '{level}' has 34 characters; a ticket keeps " \
           f"at most {PRIORITY_LENGTH}" in found
    assert any(f"customer id '{'a' * 40}…' (the file name) has 129 characters" in problem
               for problem in found)
    assert any(f"policy id '{'a' * 40}…' (the file name) has 129 characters" in problem
               for problem in found)
    assert any(f"queue id '{'a' * 40}…' has 129 characters" in problem for problem in found)
    assert any("team address 'anna@ddd" in problem and "is not a valid e-mail address"
               in problem for problem in found), "a domain of 307 characters"


def test_a_priority_name_as_long_as_a_ticket_keeps_makes_tickets(
        tmp_path: Path, database_url: str) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES, rules_dir)
    level = "Hög – verksamheten står still nu"         # 32 characters
    assert len(level) == PRIORITY_LENGTH
    _priority_named(level, rules_dir)
    runtime = open_runtime(make_config(tmp_path, database_url, rules_dir=rules_dir))
    try:
        raw = (b"Authentication-Results: mx1.example.se; dkim=pass header.d=bergstromsbygg.se;"
               b" dmarc=pass header.from=bergstromsbygg.se\r\n"
               b"From: Anna Lind <anna.lind@bergstromsbygg.se>\r\nTo: support@example.se\r\n"
               b"Subject: [High] Bokningen\r\nMessage-ID: <long-level@bergstromsbygg.se>\r\n\r\n"
               b"Bokningssidan visar fel pris.\r\n")
        outcome = receive(runtime, raw, sender="anna.lind@bergstromsbygg.se")
        assert outcome.state == "processed"
        [ticket] = tickets(runtime)
        assert ticket.priority == level
    finally:
        runtime.engine.dispose()
