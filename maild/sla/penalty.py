"""Penalty schedules: the fee reduction an agreement grants for a month of missed targets.

Two kinds, both data in a policy's `[penalty]` table:

- `breached-cases` (Cloud Nine, seed 004): the reduction depends on how many
  cases missed their response time in the month::

      [penalty]
      kind = "breached-cases"
      steps = [
        { from = 1, to = 1, percent = 10 },    # the seed's "0-1 ärende 10%"
        { from = 2, to = 10, percent = 50 },
        { from = 11, percent = 100 },          # "> 10 ärenden": no upper end
      ]

  A month without a breached case has no reduction, even when a step starts
  at 0: the seed grants the reduction "för det fall som Cloud Nine inte svarat
  inom gällande tidsgräns ... för den månad tidsgränserna överskridits".

- `uptime` (ClickSend, seed 002): the rebate depends on the monthly uptime in
  percent; the step with the lowest `below` that the uptime is under applies::

      [penalty]
      kind = "uptime"
      steps = [
        { below = 100, percent = 5 }, { below = 99, percent = 10 },
        { below = 98, percent = 25 }, { below = 97, percent = 50 },
        { below = 96, percent = 75 }, { below = 95, percent = 100 },
      ]
      cap = { amount = 125, currency = "USD" }   # "dock högst $125 eller motsvarande"

`cap` (either kind) limits the reduction as an amount of money, not a percent.
`monthly_fee` (either kind, `{ amount = 500, currency = "USD" }`) is the fee the
percent is taken of: with it, the report gives the reduction in money and
applies the cap; without it, the report gives the percent and says that the cap
could not be applied.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import Any, TypeGuard

KINDS = ("breached-cases", "uptime")
MINUTES_IN_A_SLA_MONTH = 30 * 24 * 60
"""Seed 002 measures uptime "beräknat mot antalet minuter i en 30 dagars kalendermånad"."""


def monthly_uptime(downtime_minutes: int) -> float:
    """Uptime in percent of a 30-day month from whole minutes of downtime (seed 002's measure)."""
    if downtime_minutes < 0:
        raise ValueError(f"downtime must not be negative, got {downtime_minutes} minutes")
    down = min(downtime_minutes, MINUTES_IN_A_SLA_MONTH)
    return 100.0 * (MINUTES_IN_A_SLA_MONTH - down) / MINUTES_IN_A_SLA_MONTH


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _is_whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _percent(value: object, where: str) -> float:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = float(value)
        if 0 <= number <= 100:
            return number
    raise ValueError(f"{where}: 'percent' must be a number from 0 to 100, got {value!r}")


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ValueError(f"{where}: unknown key {key!r}; allowed are {', '.join(allowed)}")


def _steps(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValueError("penalty: 'steps' must be a non-empty list of tables")
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, Mapping):
            raise ValueError(f"penalty step {number}: expected a table, got {step!r}")  # noqa: TRY004 - admin's mistake
    return steps


@dataclass(frozen=True)
class Cap:
    """The most a month's reduction may amount to, in money."""

    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, data: object, what: str = "cap") -> Cap:
        """`{ amount = 125, currency = "USD" }`; `what` names the key in messages."""
        if not isinstance(data, Mapping):
            raise ValueError(  # noqa: TRY004 - a wrong type in the rules is the admin's mistake
                f"penalty: '{what}' must be a table such as "
                f"{{ amount = 125, currency = \"USD\" }}, got {data!r}"
            )
        _check_keys(data, ("amount", "currency"), f"penalty {what}")
        amount, currency = data.get("amount"), data.get("currency")
        if not _is_number(amount) or Decimal(str(amount)) <= 0:
            raise ValueError(f"penalty {what}: 'amount' must be a number above 0, "
                             f"got {amount!r}")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise ValueError(
                f"penalty {what}: 'currency' must be a three-letter code such as SEK or USD, "
                f"got {currency!r}"
            )
        return cls(Decimal(str(amount)), currency.upper())


class PenaltySchedule(ABC):
    """A fee reduction in percent for a month, by breached cases or by uptime."""

    kind: str
    cap: Cap | None
    monthly_fee: Cap | None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> PenaltySchedule:
        """Read a `[penalty]` table; a ValueError says what is wrong in a sentence."""
        if not isinstance(data, Mapping):
            raise ValueError(f"penalty must be a table, got {data!r}")  # noqa: TRY004
        kind = data.get("kind")
        if kind == "breached-cases":
            return BreachedCasesSchedule.from_table(data)
        if kind == "uptime":
            return UptimeSchedule.from_table(data)
        raise ValueError(f"penalty: unknown kind {kind!r}; use 'breached-cases' or 'uptime'")

    @abstractmethod
    def percent(self, breaches: int | None = None, uptime: float | None = None) -> float:
        """The reduction in percent of the monthly fee."""

    def amount(
        self,
        monthly_fee: Decimal,
        currency: str,
        *,
        breaches: int | None = None,
        uptime: float | None = None,
    ) -> Decimal:
        """The reduction as money: the percent of the fee, at most the cap."""
        reduction = monthly_fee * Decimal(str(self.percent(breaches=breaches, uptime=uptime))) / 100
        if self.cap is None:
            return reduction
        if self.cap.currency != currency.upper():
            raise ValueError(
                f"the penalty cap is in {self.cap.currency} but the fee is in {currency}; "
                f"give the cap in {currency.upper()} (the agreement's 'or equivalent')"
            )
        return min(reduction, self.cap.amount)

    def fee_reduction(self, *, breaches: int | None = None,
                      uptime: float | None = None) -> Decimal | None:
        """The reduction in money of the configured monthly fee (capped); None without a fee."""
        if self.monthly_fee is None:
            return None
        return self.amount(self.monthly_fee.amount, self.monthly_fee.currency,
                           breaches=breaches, uptime=uptime)


def _fee(data: Mapping[str, Any]) -> Cap | None:
    return Cap.parse(data["monthly_fee"], "monthly_fee") if "monthly_fee" in data else None


@dataclass(frozen=True)
class CountStep:
    """`first` to `last` breached cases (no `last`: and more) give `percent`."""

    first: int
    last: int | None
    percent: float


@dataclass(frozen=True)
class BreachedCasesSchedule(PenaltySchedule):
    """Reduction by the number of cases that missed their target in the month."""

    steps: tuple[CountStep, ...]
    cap: Cap | None = None
    monthly_fee: Cap | None = None
    kind: str = "breached-cases"

    @classmethod
    def from_table(cls, data: Mapping[str, Any]) -> BreachedCasesSchedule:
        """Read `kind = "breached-cases"`, `steps = [{ from, to, percent }, ...]`, `cap`."""
        _check_keys(data, ("kind", "steps", "cap", "monthly_fee"), "penalty")
        steps: list[CountStep] = []
        for number, table in enumerate(_steps(data), start=1):
            where = f"penalty step {number}"
            _check_keys(table, ("from", "to", "percent"), where)
            first, last = table.get("from"), table.get("to")
            if not _is_whole(first) or first < 0:
                raise ValueError(
                    f"{where}: 'from' must be a whole number of at least 0, got {first!r}"
                )
            if last is not None and (not _is_whole(last) or last < first):
                raise ValueError(
                    f"{where}: 'to' must be a whole number of at least 'from' ({first}), "
                    f"got {last!r}"
                )
            steps.append(CountStep(first, last, _percent(table.get("percent"), where)))
        steps.sort(key=lambda step: step.first)
        for before, after in pairwise(steps):
            if before.last is None or after.first <= before.last:
                raise ValueError(
                    f"penalty steps overlap: {_count_range(before)} and {_count_range(after)} "
                    "breached cases"
                )
            if after.first > before.last + 1:
                gap = CountStep(before.last + 1, after.first - 1, 0)
                raise ValueError(
                    f"penalty steps leave {_count_range(gap)} breached cases without a percent"
                )
        if steps[-1].last is not None:
            after_last = steps[-1].last + 1
            raise ValueError(
                f"the last penalty step ends at {steps[-1].last} breached cases; leave out its "
                f"'to' so that more cases also have a percent, e.g. "
                f"{{ from = {after_last}, percent = 100 }}"
            )
        cap = Cap.parse(data["cap"]) if "cap" in data else None
        fee = _fee(data)
        if cap is not None and fee is not None and cap.currency != fee.currency:
            raise ValueError(f"penalty: the cap is in {cap.currency} but monthly_fee in "
                             f"{fee.currency}; give both in one currency")
        return cls(tuple(steps), cap, fee)

    def percent(self, breaches: int | None = None, uptime: float | None = None) -> float:
        """The step's percent for `breaches` cases; 0 for a month without a breach."""
        if breaches is None or isinstance(breaches, bool) or breaches < 0:
            raise ValueError(
                f"this penalty schedule counts breached cases; give breaches (0 or more), "
                f"got {breaches!r}"
            )
        if breaches == 0:
            return 0.0
        for step in self.steps:
            if step.first <= breaches and (step.last is None or breaches <= step.last):
                return step.percent
        return 0.0  # below the first step


def _count_range(step: CountStep) -> str:
    if step.last is None:
        return f"{step.first} or more"
    return str(step.first) if step.last == step.first else f"{step.first}-{step.last}"


@dataclass(frozen=True)
class UptimeStep:
    """An uptime under `below` percent gives `percent`."""

    below: float
    percent: float


@dataclass(frozen=True)
class UptimeSchedule(PenaltySchedule):
    """Rebate by the month's uptime: the step with the lowest threshold above the uptime."""

    steps: tuple[UptimeStep, ...]
    cap: Cap | None = None
    monthly_fee: Cap | None = None
    kind: str = "uptime"

    @classmethod
    def from_table(cls, data: Mapping[str, Any]) -> UptimeSchedule:
        """Read `kind = "uptime"`, `steps = [{ below, percent }, ...]`, `cap`."""
        _check_keys(data, ("kind", "steps", "cap", "monthly_fee"), "penalty")
        steps: list[UptimeStep] = []
        for number, table in enumerate(_steps(data), start=1):
            where = f"penalty step {number}"
            _check_keys(table, ("below", "percent"), where)
            below = table.get("below")
            if not isinstance(below, int | float | Decimal) or isinstance(below, bool) or not (
                0 < float(below) <= 100
            ):
                raise ValueError(
                    f"{where}: 'below' must be an uptime percentage above 0 and at most 100, "
                    f"got {below!r}"
                )
            steps.append(UptimeStep(float(below), _percent(table.get("percent"), where)))
        steps.sort(key=lambda step: step.below, reverse=True)
        for higher, lower in pairwise(steps):
            if higher.below == lower.below:
                raise ValueError(f"penalty steps: 'below = {lower.below:g}' is given twice")
            if lower.percent < higher.percent:
                raise ValueError(
                    f"penalty steps: below {lower.below:g} % uptime gives {lower.percent:g} %, "
                    f"less than the {higher.percent:g} % below {higher.below:g} %; a lower uptime "
                    "must not give a smaller rebate"
                )
        cap = Cap.parse(data["cap"]) if "cap" in data else None
        fee = _fee(data)
        if cap is not None and fee is not None and cap.currency != fee.currency:
            raise ValueError(f"penalty: the cap is in {cap.currency} but monthly_fee in "
                             f"{fee.currency}; give both in one currency")
        return cls(tuple(steps), cap, fee)

    def percent(self, breaches: int | None = None, uptime: float | None = None) -> float:
        """The rebate for a month with `uptime` percent; 0 when no step's threshold is above it."""
        if uptime is None or isinstance(uptime, bool) or not 0 <= uptime <= 100:
            raise ValueError(
                f"this penalty schedule is by uptime; give uptime in percent (0 to 100), "
                f"got {uptime!r}"
            )
        applicable = [step.percent for step in self.steps if uptime < step.below]
        return applicable[-1] if applicable else 0.0
