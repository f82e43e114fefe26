"""Reading and validating `rules/`: every problem is reported as `file:line: sentence`.

The loader collects every problem it can find before it gives up, so an admin
fixes a broken rules directory in one pass. Only a directory with no problem at
all becomes a `Rules` object.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maild.addresses import MAX_LOCAL, address_key
from maild.classify.sender import MAX_DOMAIN, PrivateDomains, is_public_suffix, normalize_domain
from maild.routing.model import (
    CUSTOMER_STATUSES,
    ENTITLED,
    LANGUAGES,
    PRIVATE_ADDRESSES,
    REQUIRED_ITEMS,
    Contact,
    Customer,
    NoAgreementRoute,
    Policy,
    PriorityTarget,
    Queue,
    QueueService,
    RequiredWhen,
    Rules,
    Staff,
    SupportAddress,
    TrustSettings,
    base_address,
)
from maild.sla import Calendar, PenaltySchedule, Target
from maild.trust.verdict import valid_path

_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[^\s@]+\.[^\s@.]+$")
_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$", re.UNICODE)
_TARGET = re.compile(r"^(none|\d+m|\d+h|\d+bd)$")
_DAYS = r"(mon|tue|wed|thu|fri|sat|sun)"
_HOURS_PART = re.compile(
    rf"^{_DAYS}(-{_DAYS})?(,{_DAYS}(-{_DAYS})?)*\s+([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$"
)
_HOLIDAYS = re.compile(r"^([A-Z]{2}(\+[a-z_]+)*)?$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# What a ticket keeps of the rules' names (the widths of its columns, `maild.models`):
# a longer one would be refused by PostgreSQL with every ticket that carries it.
ID_LENGTH = 128         # a customer's, policy's or queue's id
PRIORITY_LENGTH = 32    # a priority's name


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the rules, where it is, and what to do about it."""

    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        return f"{where}: {self.message}"


class RulesError(Exception):
    """The rules directory has problems; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class _Source:
    """A rules file's text, for finding the line a key or value stands on."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, *needles: str, after: int = 0) -> int | None:
        """The first line (1-based, from line `after` on) holding every needle, else None."""
        for number, line in enumerate(self.lines[after:], start=after + 1):
            code = line.split("#", 1)[0] if not any("#" in n for n in needles) else line
            if all(needle in code for needle in needles):
                return number
        return None

    def key_line(self, key: str, after: int = 0) -> int | None:
        """The line on which `key =` or the table `[key]` / `[x.key]` stands."""
        pattern = re.compile(
            rf'^\s*(("{re.escape(key)}"|{re.escape(key)})\s*=|\[+\s*([\w.-]+\.)?'
            rf'("{re.escape(key)}"|{re.escape(key)})\s*\]+)'
        )
        for number, line in enumerate(self.lines[after:], start=after + 1):
            if pattern.match(line):
                return number
        return None

    def value_line(self, value: str, after: int = 0) -> int | None:
        """The line on which the quoted string `value` stands."""
        return self.line_of(f'"{value}"', after=after) or self.line_of(f"'{value}'", after=after)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, source: _Source | Path, line: int | None, message: str) -> None:
        path = source.path if isinstance(source, _Source) else source
        self.problems.append(Problem(path, line, message))


def _read_toml(path: Path, problems: _Collector) -> tuple[dict[str, Any], _Source] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(path, None, "file is missing; maild needs it to route mail")
        return None
    except UnicodeDecodeError as error:
        problems.add(path, None, f"is not UTF-8 text (byte {error.start}); save it as UTF-8")
        return None
    source = _Source(path, text)
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"at line (\d+)", str(error))
        line = int(match.group(1)) if match else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        if "Cannot overwrite" in reason or "Cannot declare" in reason:
            reason = f"a key or table is defined twice ({reason})"
        problems.add(source, line, f"TOML syntax error: {reason}")
        return None


def valid_address(address: str) -> bool:
    """Whether `address` looks like local@domain.tld, no longer than maild reads an address."""
    if not _ADDRESS.match(address):
        return False
    local, _, domain = address.rpartition("@")
    return len(local) <= MAX_LOCAL and valid_domain(normalize_domain(domain))


def valid_domain(domain: str) -> bool:
    """Whether `domain` looks like a host name with at least two labels."""
    labels = domain.split(".")
    return (len(domain) <= MAX_DOMAIN and len(labels) >= 2
            and all(_LABEL.match(label) for label in labels))


def valid_hours(text: str) -> bool:
    """Whether `text` is `24/7` or `days HH:MM-HH:MM` parts separated by `;`."""
    if text.strip() == "24/7":
        return True
    parts = [part.strip() for part in text.split(";")]
    return bool(parts) and all(_HOURS_PART.match(part) for part in parts)


class _Table:
    """A TOML table being checked: known keys, types, and where each key stands."""

    def __init__(self, data: dict[str, Any], source: _Source, problems: _Collector,
                 what: str, anchor: int = 0) -> None:
        self.data = data
        self.source = source
        self.problems = problems
        self.what = what
        self.anchor = anchor

    def line(self, key: str) -> int | None:
        return self.source.key_line(key, after=self.anchor) or (self.anchor or None)

    def only(self, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in self.data:
            if key not in allowed:
                self.problems.add(self.source, self.line(key),
                                  f"{self.what}: unknown key '{key}' (allowed: "
                                  f"{', '.join(allowed)})")

    def get(self, key: str, kind: type | tuple[type, ...], expected: str,
            required: bool = True, default: Any = None) -> Any:
        if key not in self.data:
            if required:
                self.problems.add(self.source, self.anchor or None,
                                  f"{self.what}: '{key}' is missing ({expected})")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.problems.add(self.source, self.line(key),
                              f"{self.what}: '{key}' must be {expected}, not {value!r}")
            return default
        return value

    def strings(self, key: str, expected: str, required: bool = True) -> list[str]:
        value = self.get(key, list, expected, required=required, default=[])
        if not all(isinstance(item, str) for item in value):
            self.problems.add(self.source, self.line(key),
                              f"{self.what}: '{key}' must be {expected}")
            return []
        return list(value)


def _check_choice(table: _Table, key: str, value: str | None, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value is not None and value not in choices:
        table.problems.add(table.source, table.line(key),
                           f"{table.what}: '{key}' is '{value}', expected one of: "
                           f"{', '.join(choices)}")


def _load_addresses(directory: Path, problems: _Collector) -> list[tuple[SupportAddress, _Source,
                                                                         int | None]]:
    loaded = _read_toml(directory / "addresses.toml", problems)
    if loaded is None:
        return []
    data, source = loaded
    entries = data.get("address")
    if not isinstance(entries, list) or not entries:
        problems.add(source, 1, "no support address: add at least one [[address]] table "
                     "with address and queue")
        return []
    result: list[tuple[SupportAddress, _Source, int | None]] = []
    seen: set[str] = set()
    anchor = 0
    for entry in entries:
        anchor = source.line_of("[[address]]", after=anchor) or anchor
        table = _Table(entry, source, problems, "support address", anchor)
        table.only(("address", "queue"))
        address = table.get("address", str, "an e-mail address such as support@example.se")
        queue = table.get("queue", str, "a queue id from queues.toml")
        if address is None or queue is None:
            continue
        line = source.value_line(address, after=anchor - 1 if anchor else 0)
        if not valid_address(address):
            problems.add(source, line, f"'{address}' is not a valid e-mail address")
            continue
        if "+" in address.partition("@")[0]:
            problems.add(source, line, f"'{address}': list the address without its +tag; "
                         "sub-addresses are served automatically")
            continue
        key = base_address(address)
        if key in seen:
            problems.add(source, line, f"support address '{address}' is listed twice")
            continue
        seen.add(key)
        result.append((SupportAddress(address=key, queue=queue), source, table.line("queue")))
    return result


def _load_queues(directory: Path, problems: _Collector) -> dict[str, Queue]:
    loaded = _read_toml(directory / "queues.toml", problems)
    if loaded is None:
        return {}
    data, source = loaded
    queues: dict[str, Queue] = {}
    for queue_id, entry in data.items():
        line = source.key_line(queue_id)
        if not isinstance(entry, dict):
            problems.add(source, line, f"queue '{queue_id}' must be a table: [{queue_id}]")
            continue
        if not _ID.match(queue_id):
            problems.add(source, line, f"queue id '{queue_id}' may only use a-z, 0-9, - and _")
        elif len(queue_id) > ID_LENGTH:
            problems.add(source, line, f"queue id '{queue_id[:40]}…' has {len(queue_id)} "
                         f"characters; a ticket keeps at most {ID_LENGTH}")
        table = _Table(entry, source, problems, f"queue '{queue_id}'", line or 0)
        table.only(("name", "names", "team", "hours", "escalation"))
        name = table.get("name", str, "the team's name as text", default=queue_id)
        names: dict[str, str] = {}
        for language, text in table.get("names", dict, "a table of language = name, such as "
                                        "{ sv = \"Kundsupport\", en = \"Customer support\" }",
                                        required=False, default={}).items():
            if language not in LANGUAGES or not isinstance(text, str) or not text.strip():
                problems.add(source, table.line("names"),
                             f"queue '{queue_id}': names must map a language "
                             f"({', '.join(LANGUAGES)}) to a name, not {language} = {text!r}")
                continue
            names[language] = text.strip()
        team = table.strings("team", "a list of e-mail addresses", required=False)
        escalation = table.strings("escalation", "a list of e-mail addresses", required=False)
        hours = table.get("hours", str, "working hours such as 'mon-fri 08:00-17:00'",
                          required=False)
        if hours is not None and not valid_hours(hours):
            problems.add(source, table.line("hours"), f"queue '{queue_id}': hours '{hours}' is "
                         "not of the form 'mon-fri 09:00-17:00' (parts separated by ;) or '24/7'")
        for address in [*team, *escalation]:
            if not valid_address(address):
                problems.add(source, source.value_line(address) or line,
                             f"queue '{queue_id}': team address '{address}' is not a valid "
                             "e-mail address")
        queues[queue_id] = Queue(id=queue_id, name=name, team=tuple(team), hours=hours,
                                 escalation=tuple(escalation), names=names)
    if not queues and loaded is not None:
        problems.add(source, 1, "no queue defined: add at least one [queue-id] table")
    return queues


def _load_targets(table: _Table, priorities: list[str]) -> dict[str, PriorityTarget]:
    section = table.get("priority", dict, "tables [priority.NAME] with a response target",
                        default={})
    targets: dict[str, PriorityTarget] = {}
    for level, entry in section.items():
        line = table.source.key_line(level) or table.line("priority")
        if level not in priorities:
            table.problems.add(table.source, line,
                               f"{table.what}: [priority.{level}] names a priority that is not "
                               f"in priorities ({', '.join(priorities)})")
            continue
        if not isinstance(entry, dict):
            table.problems.add(table.source, line, f"{table.what}: [priority.{level}] must be a "
                               "table")
            continue
        inner = _Table(entry, table.source, table.problems,
                       f"{table.what}, priority {level}", line or 0)
        inner.only(("response", "resolution", "action", "hours", "holidays", "escalate_on_open",
                    "markers", "keywords"))
        response = inner.get("response", str, "a target such as 30m, 2h, 1bd or none")
        resolution = inner.get("resolution", str, "a target such as 8h or 5bd", required=False)
        action = inner.get("action", str, "a target such as 30m or 0bd (the same business day)",
                           required=False)
        for key, target in (("response", response), ("resolution", resolution),
                            ("action", action)):
            if target is not None and not _TARGET.match(target):
                table.problems.add(table.source, inner.line(key),
                                   f"{inner.what}: {key} '{target}' is not a target: write "
                                   "minutes (30m), hours (2h), business days (1bd) or none")
        hours = inner.get("hours", str, "opening hours text", required=False)
        if hours is not None and not valid_hours(hours):
            table.problems.add(table.source, inner.line("hours"),
                               f"{inner.what}: hours '{hours}' is not of the form "
                               "'mon-fri 09:00-17:00' (parts separated by ;) or '24/7'")
        holidays = inner.get("holidays", str, "a holiday calendar such as SE", required=False)
        escalate = inner.get("escalate_on_open", bool, "true or false", required=False,
                             default=False)
        markers = inner.strings("markers", "a list of phrases the customer writes to choose "
                                "this priority", required=False)
        keywords = inner.strings("keywords", "a list of words that mean this priority",
                                 required=False)
        targets[level] = PriorityTarget(response=response or "none", resolution=resolution,
                                        action=action, hours=hours, holidays=holidays,
                                        escalate_on_open=bool(escalate),
                                        markers=tuple(markers), keywords=tuple(keywords))
    for level in priorities:
        if level not in targets and level not in section:
            table.problems.add(table.source, table.line("priorities"),
                               f"{table.what}: priority '{level}' has no [priority.{level}] "
                               "table with its response target")
    return targets


def _load_required_when(table: _Table, required: list[str]) -> tuple[RequiredWhen, ...]:
    """`[required_when]`: item = ["word", ...], the item is required when the case mentions one."""
    section = table.get("required_when", dict, "a [required_when] table such as "
                        "campaign_number = [\"kampanj\", \"campaign\"]", required=False,
                        default={})
    conditions: list[RequiredWhen] = []
    for item, mentions in section.items():
        line = table.source.key_line(item) or table.line("required_when")
        if item not in REQUIRED_ITEMS:
            table.problems.add(table.source, line, f"{table.what}: required_when names unknown "
                               f"item '{item}' (known: {', '.join(REQUIRED_ITEMS)})")
            continue
        if item in required:
            table.problems.add(table.source, line, f"{table.what}: '{item}' is both in required "
                               "(always) and in required_when (only sometimes); keep one")
            continue
        if (not isinstance(mentions, list) or not mentions
                or not all(isinstance(word, str) and word.strip() for word in mentions)):
            table.problems.add(table.source, line, f"{table.what}: required_when.{item} must be "
                               "a non-empty list of words the case mentions, such as "
                               "[\"kampanj\", \"campaign\"]")
            continue
        conditions.append(RequiredWhen(item, tuple(word.strip().lower() for word in mentions)))
    return tuple(conditions)


def _load_queue_services(table: _Table, known_queues: Iterable[str] | None
                         ) -> dict[str, QueueService]:
    """`[queue.ID]`: the policy's own hours and targets for cases in queue ID."""
    section = table.get("queue", dict, "tables [queue.ID] with hours and targets",
                        required=False, default={})
    known = tuple(known_queues) if known_queues is not None else None
    services: dict[str, QueueService] = {}
    for queue_id, entry in section.items():
        line = table.source.key_line(queue_id) or table.line("queue")
        if not isinstance(entry, dict):
            table.problems.add(table.source, line, f"{table.what}: [queue.{queue_id}] must be "
                               "a table")
            continue
        if known is not None and queue_id not in known:
            table.problems.add(table.source, line, f"{table.what}: [queue.{queue_id}] names an "
                               f"unknown queue (defined: {', '.join(known)})")
            continue
        inner = _Table(entry, table.source, table.problems,
                       f"{table.what}, queue {queue_id}", line or 0)
        inner.only(("hours", "holidays", "response", "action", "resolution"))
        hours = inner.get("hours", str, "opening hours text", required=False)
        if hours is not None and not valid_hours(hours):
            table.problems.add(table.source, inner.line("hours"),
                               f"{inner.what}: hours '{hours}' is not of the form "
                               "'mon-sun 06:00-23:00' (parts separated by ;) or '24/7'")
        holidays = inner.get("holidays", str, "a holiday calendar such as SE, or \"\"",
                             required=False)
        if holidays is not None and not _HOLIDAYS.match(holidays):
            table.problems.add(table.source, inner.line("holidays"),
                               f"{inner.what}: holidays '{holidays}' must be a country code "
                               "with optional categories, such as SE, or \"\" for none")
        texts: dict[str, str | None] = {}
        for key in ("response", "action", "resolution"):
            texts[key] = inner.get(key, str, "a target such as 1h, 0bd or none", required=False)
            if texts[key] is not None and not _TARGET.match(str(texts[key])):
                table.problems.add(table.source, inner.line(key),
                                   f"{inner.what}: {key} '{texts[key]}' is not a target: write "
                                   "minutes (30m), hours (2h), business days (1bd, 0bd = the "
                                   "same day) or none")
        services[queue_id] = QueueService(queue=queue_id, hours=hours, holidays=holidays,
                                          response=texts["response"], action=texts["action"],
                                          resolution=texts["resolution"])
    return services


def _load_review_required(table: _Table, priorities: list[str]) -> tuple[str, ...]:
    """`review_required`: the priorities whose tickets close only with a post-incident review."""
    levels = table.strings("review_required", "a list of priorities, such as [\"P1\", \"P2\"]",
                           required=False)
    for level in levels:
        if level not in priorities:
            table.problems.add(table.source, table.line("review_required"),
                               f"{table.what}: review_required names '{level}', which is not "
                               f"one of priorities ({', '.join(priorities)})")
    return tuple(level for level in levels if level in priorities)


def _load_policy(path: Path, problems: _Collector,
                 known_queues: Iterable[str] | None = None) -> Policy | None:
    loaded = _read_toml(path, problems)
    if loaded is None:
        return None
    data, source = loaded
    policy_id = path.stem
    if len(policy_id) > ID_LENGTH:
        problems.add(source, None, f"policy id '{policy_id[:40]}…' (the file name) has "
                     f"{len(policy_id)} characters; a ticket keeps at most {ID_LENGTH}")
    table = _Table(data, source, problems, f"policy '{policy_id}'")
    table.only(("name", "hours", "holidays", "priorities", "default_priority", "required",
                "max_contacts", "priority", "closed", "timezone", "escalation",
                "warn_at_percent", "penalty", "trust_priority_headers", "confirm_complete",
                "required_when", "queue", "review_required", "entitled", "private_addresses"))
    name = table.get("name", str, "the contract's name as text", default=policy_id)
    hours = table.get("hours", str, "opening hours such as 'mon-fri 09:00-17:00' or '24/7'",
                      default="24/7")
    if not valid_hours(hours):
        problems.add(source, table.line("hours"),
                     f"policy '{policy_id}': hours '{hours}' is not of the form "
                     "'mon-fri 09:00-17:00' (parts separated by ;) or '24/7'")
    holidays = table.get("holidays", str, "a holiday calendar such as SE or SE+de_facto",
                         required=False, default="")
    if not _HOLIDAYS.match(holidays):
        problems.add(source, table.line("holidays"),
                     f"policy '{policy_id}': holidays '{holidays}' must be a country code "
                     "with optional categories, such as SE or SE+de_facto")
    priorities = table.strings("priorities", "a list of priority names, most urgent first")
    if len(set(priorities)) != len(priorities):
        problems.add(source, table.line("priorities"),
                     f"policy '{policy_id}': a priority is listed twice in priorities")
    if not priorities:
        problems.add(source, table.line("priorities"),
                     f"policy '{policy_id}': priorities must name at least one level")
        priorities = ["Normal"]
    for level in priorities:
        if len(level) > PRIORITY_LENGTH:
            problems.add(source, table.line("priorities"),
                         f"policy '{policy_id}': priority '{level}' has {len(level)} "
                         f"characters; a ticket keeps at most {PRIORITY_LENGTH}")
    default = table.get("default_priority", str, "one of the priorities",
                        default=priorities[-1])
    if default not in priorities:
        problems.add(source, table.line("default_priority"),
                     f"policy '{policy_id}': default_priority '{default}' is not one of "
                     f"priorities ({', '.join(priorities)})")
    required = table.strings("required", "a list of required items", required=False)
    for item in required:
        if item not in REQUIRED_ITEMS:
            problems.add(source, source.value_line(item) or table.line("required"),
                         f"policy '{policy_id}': unknown required item '{item}' (known: "
                         f"{', '.join(REQUIRED_ITEMS)})")
    max_contacts = table.get("max_contacts", int, "a whole number", required=False)
    if max_contacts is not None and max_contacts < 0:
        problems.add(source, table.line("max_contacts"),
                     f"policy '{policy_id}': max_contacts cannot be negative")
    targets = _load_targets(table, priorities)
    closed = [str(item) for item in table.get("closed", list, "a list of dates and ranges such "
                                              "as \"2026-07-13..2026-07-31\"", required=False,
                                              default=[])]
    timezone = table.get("timezone", str, "a time zone such as Europe/Stockholm",
                         required=False, default="Europe/Stockholm")
    required_when = _load_required_when(table, required)
    services = _load_queue_services(table, known_queues)
    review_required = _load_review_required(table, priorities)
    calendars = _calendars(table, hours, holidays, closed, timezone=timezone, targets=targets,
                           services=services)
    escalation = table.strings("escalation", "a list of e-mail addresses", required=False)
    for address in escalation:
        if not valid_address(address):
            problems.add(source, source.value_line(address) or table.line("escalation"),
                         f"policy '{policy_id}': escalation address '{address}' is not a valid "
                         "e-mail address")
    warn_at = table.get("warn_at_percent", int, "a whole number from 1 to 99", required=False)
    if warn_at is not None and not 0 < warn_at < 100:
        problems.add(source, table.line("warn_at_percent"),
                     f"policy '{policy_id}': warn_at_percent must be from 1 to 99, not {warn_at}")
    penalty = None
    penalty_table = table.get("penalty", dict, "a [penalty] table", required=False)
    if penalty_table is not None:
        try:
            penalty = PenaltySchedule.parse(penalty_table)
        except ValueError as error:
            problems.add(source, table.line("penalty"), f"policy '{policy_id}': penalty: {error}")
    trusted = table.get("trust_priority_headers", str, "the priority that X-Priority/Importance "
                        "high selects", required=False)
    if trusted is not None and trusted not in priorities:
        problems.add(source, table.line("trust_priority_headers"),
                     f"policy '{policy_id}': trust_priority_headers '{trusted}' is not one of "
                     f"priorities ({', '.join(priorities)})")
    confirm = table.get("confirm_complete", bool, "true or false", required=False,
                        default=False)
    entitled = table.get("entitled", str, "who may open cases: domain or contacts",
                         required=False, default="domain")
    _check_choice(table, "entitled", entitled, ENTITLED)
    private_addresses = table.get("private_addresses", str, "as-indicated or lowest",
                                  required=False, default="as-indicated")
    _check_choice(table, "private_addresses", private_addresses, PRIVATE_ADDRESSES)
    return Policy(id=policy_id, name=name, hours=hours, holidays=holidays,
                  priorities=tuple(priorities), default_priority=default,
                  required=tuple(required), targets=targets, max_contacts=max_contacts,
                  closed=tuple(closed), timezone=timezone, escalation=tuple(escalation),
                  warn_at_percent=warn_at, penalty=penalty, calendars=calendars,
                  trust_priority_headers=trusted, confirm_complete=bool(confirm),
                  required_when=required_when, queue_services=services,
                  review_required=review_required, entitled=entitled or "domain",
                  private_addresses=private_addresses or "as-indicated")


def _calendars(table: _Table, hours: str, holidays: str, closed: list[str], *, timezone: str,
               targets: dict[str, PriorityTarget],
               services: dict[str, QueueService]) -> dict[str, Calendar]:
    """The policy's calendar (key ""), one per priority with its own hours, one per queue service.

    A queue service's calendar has the key `queue:ID`.
    """
    calendars: dict[str, Calendar] = {}
    wanted: list[tuple[str, str, str, str]] = [("", hours, holidays, "hours")]
    for level, target in targets.items():
        if target.hours is not None or target.holidays is not None:
            wanted.append((level, target.hours or hours,
                           holidays if target.holidays is None else target.holidays, level))
    for queue_id, service in services.items():
        if service.hours is not None or service.holidays is not None:
            wanted.append((f"queue:{queue_id}", service.hours or hours,
                           holidays if service.holidays is None else service.holidays, queue_id))
    for level, level_hours, level_holidays, key in wanted:
        try:
            calendars[level] = Calendar.parse(level_hours, level_holidays, closed, tz=timezone)
        except ValueError as error:
            where = (f", queue {level[6:]}" if level.startswith("queue:")
                     else f", priority {level}" if level else "")
            table.problems.add(table.source, table.line(key),
                               f"{table.what}{where}: {error}")
            calendars[level] = Calendar.parse("24/7")
    for level, target in targets.items():
        for key, text in (("response", target.response), ("resolution", target.resolution),
                          ("action", target.action)):
            if text is None:
                continue
            try:
                Target.parse(text)
            except ValueError as error:
                table.problems.add(table.source, table.line(level),
                                   f"{table.what}, priority {level}: {key}: {error}")
    for queue_id, service in services.items():
        for key, text in (("response", service.response), ("action", service.action),
                          ("resolution", service.resolution)):
            if text is None:
                continue
            try:
                Target.parse(text)
            except ValueError as error:
                table.problems.add(table.source, table.line(queue_id),
                                   f"{table.what}, queue {queue_id}: {key}: {error}")
    return calendars


@dataclass(frozen=True)
class _LoadedCustomer:
    customer: Customer
    source: _Source


def _load_customer(path: Path, problems: _Collector) -> _LoadedCustomer | None:
    loaded = _read_toml(path, problems)
    if loaded is None:
        return None
    data, source = loaded
    customer_id = path.stem
    if not _ID.match(customer_id):
        problems.add(source, None, f"customer file name '{path.name}' must be the customer id: "
                     "a-z, 0-9, - and _ only, such as acme-ab.toml")
    elif len(customer_id) > ID_LENGTH:
        problems.add(source, None, f"customer id '{customer_id[:40]}…' (the file name) has "
                     f"{len(customer_id)} characters; a ticket keeps at most {ID_LENGTH}")
    table = _Table(data, source, problems, f"customer '{customer_id}'")
    table.only(("name", "domains", "policy", "queue", "language", "status", "contact",
                "queue_by_address", "timezone", "authenticated_by"))
    name = table.get("name", str, "the customer's name as text", default=customer_id)
    domains = table.strings("domains", "a list of domains such as [\"foretag.se\"]")
    normalized: list[str] = []
    for domain in domains:
        line = source.value_line(domain) or table.line("domains")
        clean = normalize_domain(domain)
        if not valid_domain(clean):
            problems.add(source, line, f"customer '{customer_id}': '{domain}' is not a valid "
                         "domain name")
            continue
        if is_public_suffix(clean):
            problems.add(source, line, f"customer '{customer_id}': '{domain}' is a public "
                         "suffix, not a company's domain")
            continue
        normalized.append(clean)
    policy = table.get("policy", str, "a policy id (a file name in policies/)", default="")
    queue = table.get("queue", str, "a queue id from queues.toml", required=False)
    language = table.get("language", str, "sv or en", required=False, default="sv")
    _check_choice(table, "language", language, LANGUAGES)
    status = table.get("status", str, "active, suspended or no-agreement", required=False,
                       default="active")
    _check_choice(table, "status", status, CUSTOMER_STATUSES)
    timezone = table.get("timezone", str, "a time zone such as Europe/London", required=False)
    if timezone is not None and not _known_zone(timezone):
        problems.add(source, table.line("timezone"), f"customer '{customer_id}': timezone "
                     f"'{timezone}' is not a time zone name such as Europe/London")
        timezone = None
    contacts: list[Contact] = []
    anchor = 0
    for entry in table.get("contact", list, "[[contact]] tables", required=False, default=[]):
        anchor = source.line_of("[[contact]]", after=anchor) or anchor
        if not isinstance(entry, dict):
            problems.add(source, anchor or None, f"customer '{customer_id}': each contact must "
                         "be a [[contact]] table")
            continue
        contact = _Table(entry, source, problems, f"customer '{customer_id}', contact", anchor)
        contact.only(("address", "name", "title"))
        address = contact.get("address", str, "the contact's e-mail address")
        person = contact.get("name", str, "the contact's full name")
        title = contact.get("title", str, "the contact's job title", required=False)
        if address is None or person is None:
            continue
        if not valid_address(address):
            problems.add(source, contact.line("address"), f"customer '{customer_id}': contact "
                         f"address '{address}' is not a valid e-mail address")
            continue
        contacts.append(Contact(address=address_key(address), name=person, title=title))
    by_address: dict[str, str] = {}
    for address, target in table.get("queue_by_address", dict, "a table of support address = "
                                     "queue id", required=False, default={}).items():
        if not isinstance(target, str):
            problems.add(source, source.line_of(address), f"customer '{customer_id}': "
                         f"queue_by_address for '{address}' must be a queue id")
            continue
        by_address[base_address(address)] = target
    paths = _trust_paths(table, f"customer '{customer_id}'")
    customer = Customer(id=customer_id, name=name, domains=tuple(normalized), policy=policy,
                        queue=queue, language=language or "sv", status=status or "active",
                        contacts=tuple(contacts), queue_by_address=by_address,
                        timezone=timezone, authenticated_by=paths)
    return _LoadedCustomer(customer, source)


def _known_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this system knows (Europe/London)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _trust_paths(table: _Table, what: str) -> tuple[str, ...]:
    """`authenticated_by`: the trust paths besides DMARC (see maild.trust.verdict)."""
    paths = table.strings("authenticated_by", 'a list of trust paths such as ["dkim", '
                          '"spf", "auth", "dkim:mailer.example"]', required=False)
    for path in paths:
        if not valid_path(path):
            table.problems.add(table.source, table.source.value_line(path) or
                               table.line("authenticated_by"),
                               f"{what}: authenticated_by '{path}' is not a trust path: use "
                               "dkim, spf, auth or dkim:DOMAIN")
    return tuple(path.lower() for path in paths)


def _load_private(directory: Path, problems: _Collector) -> PrivateDomains:
    path = directory / "private-domains.txt"
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if entry and not valid_domain(normalize_domain(entry)):
                problems.add(path, number, f"'{entry}' is not a valid domain name")
    return PrivateDomains.with_local_file(path)


def _load_templates(directory: Path, problems: _Collector) -> dict[str, str]:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    templates: dict[str, str] = {}
    folder = directory / "templates"
    if not folder.is_dir():
        problems.add(folder, None, "the templates folder is missing (ack.sv.txt, ack.en.txt, "
                     "complete.sv.txt, complete.en.txt)")
        return templates
    environment = SandboxedEnvironment()
    for path in sorted(folder.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        try:
            environment.parse(text)
        except jinja2.TemplateSyntaxError as error:
            problems.add(path, error.lineno, f"template syntax error: {error.message}")
            continue
        templates[path.stem] = text
    for needed in ("ack.sv", "ack.en", "complete.sv", "complete.en"):
        if needed not in templates and (folder / f"{needed}.txt").exists() is False:
            problems.add(folder / f"{needed}.txt", None, "template is missing; maild needs it "
                         "to write to customers")
    return templates


def rules_version(directory: Path) -> str:
    """A short fingerprint of every rules file: decisions name the version they used."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            digest.update(str(path.relative_to(directory)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


def _cross_check(
    problems: _Collector,
    *,
    customers: list[_LoadedCustomer],
    policies: dict[str, Policy],
    queues: dict[str, Queue],
    addresses: list[tuple[SupportAddress, _Source, int | None]],
    private: PrivateDomains,
) -> None:
    served = {address.address for address, _, _ in addresses}
    for address, source, line in addresses:
        if queues and address.queue not in queues:
            problems.add(source, line, f"support address '{address.address}': unknown queue "
                         f"'{address.queue}' (defined: {', '.join(queues)})")
    owners: dict[str, tuple[str, str]] = {}
    contact_owner: dict[str, str] = {}
    for loaded in customers:
        customer, source = loaded.customer, loaded.source
        if customer.policy and policies and customer.policy not in policies:
            problems.add(source, source.key_line("policy"),
                         f"customer '{customer.id}': unknown policy '{customer.policy}' "
                         f"(defined: {', '.join(policies)})")
        if customer.queue is not None and queues and customer.queue not in queues:
            problems.add(source, source.key_line("queue"),
                         f"customer '{customer.id}': unknown queue '{customer.queue}' "
                         f"(defined: {', '.join(queues)})")
        for support, queue in customer.queue_by_address.items():
            line = source.line_of(support.partition("@")[0])
            if support not in served:
                problems.add(source, line, f"customer '{customer.id}': queue_by_address names "
                             f"'{support}', which is not a served support address")
            if queues and queue not in queues:
                problems.add(source, line, f"customer '{customer.id}': unknown queue '{queue}' "
                             f"for '{support}'")
        for domain in customer.domains:
            line = source.value_line(domain) or source.key_line("domains")
            if domain in private:
                problems.add(source, line, f"customer '{customer.id}': '{domain}' is a private "
                             "mail provider; register the person as a [[contact]] instead")
            elif domain in owners and owners[domain][0] != customer.id:
                owner, where = owners[domain]
                problems.add(source, line, f"customer '{customer.id}': domain '{domain}' is "
                             f"already claimed by customer '{owner}' ({where})")
            owners.setdefault(domain, (customer.id, f"{source.path}:{line}"))
        for contact in customer.contacts:
            line = source.value_line(contact.address) or source.line_of(contact.address)
            if contact.address in contact_owner and contact_owner[contact.address] != customer.id:
                problems.add(source, line, f"customer '{customer.id}': contact "
                             f"'{contact.address}' is already a contact of customer "
                             f"'{contact_owner[contact.address]}'")
            contact_owner.setdefault(contact.address, customer.id)
        policy = policies.get(customer.policy)
        if customer.status == "no-agreement" and policy and policy.penalty is not None:
            problems.add(source, source.key_line("status"),
                         f"customer '{customer.id}' has status no-agreement, but policy "
                         f"'{policy.id}' has a fee reduction it could not honour: use a "
                         "policy without [penalty]")
        if policy and policy.max_contacts is not None and (
                len(customer.contacts) > policy.max_contacts):
            problems.add(source, source.line_of("[[contact]]"),
                         f"customer '{customer.id}' has {len(customer.contacts)} contacts, but "
                         f"policy '{policy.id}' allows at most {policy.max_contacts}")


def load_rules(directory: Path) -> Rules:
    """Read and check every rules file in `directory`; `RulesError` lists all problems."""
    problems = _Collector()
    if not directory.is_dir():
        raise RulesError([Problem(directory, None, "the rules directory does not exist")])
    addresses = _load_addresses(directory, problems)
    queues = _load_queues(directory, problems)
    policies: dict[str, Policy] = {}
    policy_files = sorted((directory / "policies").glob("*.toml"))
    if not policy_files:
        problems.add(directory / "policies", None, "no policy: add at least one "
                     "policies/NAME.toml")
    for path in policy_files:
        policy = _load_policy(path, problems, known_queues=queues or None)
        if policy is not None:
            policies[policy.id] = policy
    customers = [loaded for path in sorted((directory / "customers").glob("*.toml"))
                 if (loaded := _load_customer(path, problems)) is not None]
    private = _load_private(directory, problems)
    no_agreement = _load_no_agreement(directory, problems, policies, queues)
    staff = _load_staff(directory, problems)
    trust, suspended_queue = _load_trust(directory, problems, queues)
    if not trust.authserv_ids:
        for loaded in customers:
            if loaded.customer.authenticated_by:
                problems.add(loaded.source, loaded.source.key_line("authenticated_by"),
                             f"customer '{loaded.customer.id}': authenticated_by needs a "
                             "trusted authserv-id in routing.toml [trust]")
    templates = _load_templates(directory, problems)
    _cross_check(problems, customers=customers, policies=policies, queues=queues,
                 addresses=addresses, private=private)
    if problems.problems:
        raise RulesError(problems.problems)
    assert no_agreement is not None
    domain_index = {domain: loaded.customer.id for loaded in customers
                    for domain in loaded.customer.domains}
    contact_index = {contact.address: (loaded.customer.id, contact) for loaded in customers
                     for contact in loaded.customer.contacts}
    return Rules(
        directory=directory,
        version=rules_version(directory),
        customers={loaded.customer.id: loaded.customer for loaded in customers},
        policies=policies,
        queues=queues,
        addresses=tuple(address for address, _, _ in addresses),
        no_agreement=no_agreement,
        private=private,
        templates=templates,
        staff=staff,
        trust=trust,
        suspended_queue=suspended_queue,
        _domain_index=domain_index,
        _contact_index=contact_index,
    )


def _load_no_agreement(directory: Path, problems: _Collector, policies: dict[str, Policy],
                       queues: dict[str, Queue]) -> NoAgreementRoute | None:
    loaded = _read_toml(directory / "routing.toml", problems)
    if loaded is None:
        return None
    data, source = loaded
    top = _Table(data, source, problems, "routing.toml")
    top.only(("no_agreement", "staff", "trust", "suspended"))
    section = top.get("no_agreement", dict, "a [no_agreement] table with policy and queue",
                      default=None)
    if section is None:
        return None
    table = _Table(section, source, problems, "[no_agreement]", source.key_line("no_agreement")
                   or 0)
    table.only(("policy", "queue"))
    policy = table.get("policy", str, "a policy id")
    queue = table.get("queue", str, "a queue id")
    check: list[tuple[str, str | None, dict[str, Any], Callable[[], str]]] = [
        ("policy", policy, dict(policies), lambda: ", ".join(policies)),
        ("queue", queue, dict(queues), lambda: ", ".join(queues)),
    ]
    for key, value, known, listing in check:
        if value is not None and known and value not in known:
            problems.add(source, table.line(key), f"[no_agreement]: unknown {key} '{value}' "
                         f"(defined: {listing()})")
    if policy is None or queue is None:
        return None
    return NoAgreementRoute(policy=policy, queue=queue)


def _load_staff(directory: Path, problems: _Collector) -> Staff:
    """The [staff] table of routing.toml: addresses and domains whose mail is a response."""
    path = directory / "routing.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return Staff()  # reported by _load_no_agreement already
    section = data.get("staff", {})
    source = _Source(path, path.read_text(encoding="utf-8"))
    if not isinstance(section, dict):
        problems.add(source, source.key_line("staff"), "[staff] must be a table")
        return Staff()
    table = _Table(section, source, problems, "[staff]", source.key_line("staff") or 0)
    table.only(("addresses", "domains", "authenticated_by"))
    paths = _trust_paths(table, "[staff]")
    addresses = table.strings("addresses", "a list of e-mail addresses", required=False)
    domains = table.strings("domains", "a list of domains", required=False)
    for address in addresses:
        if not valid_address(address):
            problems.add(source, source.value_line(address), f"[staff]: '{address}' is not a "
                         "valid e-mail address")
    for domain in domains:
        if not valid_domain(normalize_domain(domain)):
            problems.add(source, source.value_line(domain), f"[staff]: '{domain}' is not a "
                         "valid domain name")
    return Staff(addresses=frozenset(a.lower() for a in addresses),
                 domains=frozenset(normalize_domain(d) for d in domains), authenticated_by=paths)


def _load_trust(directory: Path, problems: _Collector, queues: dict[str, Queue]
                ) -> tuple[TrustSettings, str | None]:
    """[trust] (the trusted authserv-ids) and [suspended] (its queue) of routing.toml."""
    path = directory / "routing.toml"
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return TrustSettings(), None  # reported by _load_no_agreement already
    source = _Source(path, text)
    top = _Table(data, source, problems, "routing.toml")
    section = top.get("trust", dict, "a [trust] table", required=False, default={})
    table = _Table(section, source, problems, "[trust]", source.key_line("trust") or 0)
    table.only(("authserv_ids", "received_hops"))
    ids = table.strings("authserv_ids", "a list of the organisation's MTA authserv-ids, such "
                        "as [\"mx1.example.se\"]", required=False)
    for authserv_id in ids:
        if not valid_domain(normalize_domain(authserv_id)):
            problems.add(source, source.value_line(authserv_id) or table.line("authserv_ids"),
                         f"[trust]: authserv-id '{authserv_id}' is not a host or domain name")
    hops = table.get("received_hops", int, "a whole number from 0 to 5", required=False,
                     default=0)
    if not 0 <= hops <= 5:
        problems.add(source, table.line("received_hops"),
                     f"[trust]: received_hops must be from 0 to 5, not {hops}")
        hops = 0
    suspended = top.get("suspended", dict, "a [suspended] table", required=False, default={})
    held = _Table(suspended, source, problems, "[suspended]", source.key_line("suspended") or 0)
    held.only(("queue",))
    queue = held.get("queue", str, "a queue id from queues.toml", required=False)
    if queue is not None and queues and queue not in queues:
        problems.add(source, held.line("queue"), f"[suspended]: unknown queue '{queue}' "
                     f"(defined: {', '.join(queues)})")
    return TrustSettings(authserv_ids=frozenset(i.lower() for i in ids),
                         received_hops=hops), queue
