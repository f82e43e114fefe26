"""Precision and recall of every required-information detector on two labelled sets of mail.

Each `.eml` has an `.expected.json` whose `items` say, item by item, whether a
person reading the mail finds it there. The table is printed (run pytest with
`-s` to see it) and is the message of a failed assertion.

- `fixtures/emails/`: the sample mails the detectors were written against. Their
  figures are optimistic: the bar is 95 %.
- `fixtures/heldout/`: mails written and labelled after the detectors, before
  any change to them (HTML-only mails with tables, Outlook and Gmail reply
  chains, relative times in Swedish and English). They measure how the
  detectors do on mail they were not shaped by; their bar is lower and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from maild.checks import KNOWN_ITEMS, check_items
from maild.parse import parse_mail
from tests.conftest import FIXTURES

BAR = 0.95
MIN_FIXTURES = 40
FILES = sorted(FIXTURES.glob("*.eml"))
HELD_OUT = sorted((FIXTURES.parent / "heldout").glob("*.eml"))
HELD_OUT_BAR = 0.80
MIN_HELD_OUT = 30


@dataclass
class Score:
    """The confusion counts of one detector, with the fixtures it got wrong."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    wrong: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _labels(path: Path) -> dict[str, bool]:
    data = json.loads(path.with_suffix(".expected.json").read_text("utf-8"))
    items: dict[str, bool] = data["items"]
    return items


def _scores(files: list[Path]) -> dict[str, Score]:
    scores = {item: Score() for item in KNOWN_ITEMS}
    for path in files:
        labels = _labels(path)
        for result in check_items(parse_mail(path.read_bytes()), KNOWN_ITEMS):
            expected = labels[result.item]
            score = scores[result.item]
            if result.present and expected:
                score.tp += 1
            elif result.present:
                score.fp += 1
                score.wrong.append(f"FP {path.stem}: {result.evidence}")
            elif expected:
                score.fn += 1
                score.wrong.append(f"FN {path.stem}")
            else:
                score.tn += 1
    return scores


def _table(scores: dict[str, Score]) -> str:
    lines = [f"{'item':<20} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4} {'precision':>10} "
             f"{'recall':>7}"]
    for item, score in scores.items():
        lines.append(f"{item:<20} {score.tp:>4} {score.fp:>4} {score.fn:>4} {score.tn:>4} "
                     f"{score.precision:>10.2f} {score.recall:>7.2f}")
    lines.extend(f"  {item}: {wrong}" for item, score in scores.items() for wrong in score.wrong)
    return "\n".join(lines)


@pytest.mark.parametrize(("files", "least"), [(FILES, MIN_FIXTURES), (HELD_OUT, MIN_HELD_OUT)],
                         ids=["fixtures", "held-out"])
def test_there_are_enough_labelled_mails(files: list[Path], least: int) -> None:
    assert len(files) >= least, f"only {len(files)} labelled mails"
    for path in files:
        assert set(_labels(path)) == set(KNOWN_ITEMS), f"{path.name}: items must label all nine"


@pytest.mark.parametrize(("files", "bar"), [(FILES, BAR), (HELD_OUT, HELD_OUT_BAR)],
                         ids=["fixtures", "held-out"])
def test_every_detector_meets_the_bar(files: list[Path], bar: float) -> None:
    scores = _scores(files)
    table = _table(scores)
    print(f"\nDetector quality on {len(files)} labelled mails (bar {bar:.2f}):\n{table}")
    below = [item for item, score in scores.items()
             if score.precision < bar or score.recall < bar]
    assert not below, f"below {bar:.2f}: {', '.join(below)}\n{table}"
