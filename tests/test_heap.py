"""A set-up maild process freezes its long-lived objects (`maild.heap`), and what it may
replace while it runs, its rules, holds no reference cycle that freezing would keep."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from maild.routing.load import load_rules
from maild.runtime import Runtime
from maild.workers.side_by_side import SideBySide
from tests.conftest import ROOT
from tests.daemon_helpers import make_daemon, wait_until

# Far fewer objects than a set-up process has (some 150,000), far more than a test's own.
SET_UP = 50_000


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """This test process's objects unfrozen before and after (the test freezes them)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_set_of_rules_holds_no_reference_cycle() -> None:
    """Rules replaced on reload are freed by reference counting alone, frozen or not: none
    of them is left for the cyclic collector, which does not look at frozen objects."""
    gc.disable()
    try:
        rules = load_rules(ROOT / "rules")
        gc.collect()
        del rules
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_pass_freezes_what_it_set_up(sqlite_runtime: Runtime, unfrozen: None) -> None:
    """`maild ingest` and `maild process` (and their helpers, forked after it) walk the
    objects of a set-up process no more."""
    assert gc.get_freeze_count() == 0
    with SideBySide(sqlite_runtime.engine, sqlite_runtime.processor, 1):
        assert gc.get_freeze_count() > SET_UP


def test_the_daemon_and_its_workers_freeze_what_they_set_up(tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path, env={"MAILD_PROCESSING_WORKERS": "1"})
    daemon.start()
    try:
        wait_until(lambda: len(daemon.events("heap.settled")) == 2, timeout=30,
                   what="the daemon and its worker settled", log=daemon.log)
        settled = daemon.events("heap.settled")
        assert daemon.process is not None
        assert daemon.process.pid in {event["pid"] for event in settled}
        assert len({event["pid"] for event in settled}) == 2
        assert all(event["frozen"] > SET_UP for event in settled), settled
    finally:
        daemon.stop()
