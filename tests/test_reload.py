"""Reloading rules: whole sets only, broken sets refused with the old ones kept, files watched."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select
from structlog.testing import capture_logs

from maild.intake import store_inbound
from maild.models import Inbound
from maild.routing.load import RulesError
from maild.routing.reload import LiveRules
from maild.runtime import open_runtime
from tests.conftest import RULES, make_config
from tests.mailmaker import support_mail

CUSTOMER = "customers/bergstroms-bygg.toml"


def _versions(directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """File contents of version A (queue web) and B (a new queue `webb2` for the customer)."""
    customer = (directory / CUSTOMER).read_text(encoding="utf-8")
    queues = (directory / "queues.toml").read_text(encoding="utf-8")
    a = {CUSTOMER: customer, "queues.toml": queues}
    new_queue = '\n[webb2]\nname = "Webb, nya teamet"\nteam = ["webb2@example.se"]\n'
    b = {CUSTOMER: customer.replace('queue = "web"', 'queue = "webb2"'),
         "queues.toml": queues + new_queue}
    return a, b


def test_a_reload_during_processing_never_half_applies(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES, rules_dir)
    version_a, version_b = _versions(rules_dir)
    live = LiveRules(rules_dir)
    runtime = open_runtime(make_config(tmp_path, rules_dir=rules_dir))
    processor = runtime.processor()
    processor.rules = lambda: live.current
    processor.batch_size = 2  # the rules are read once a batch: many batches see the flips
    for index in range(150):
        store_inbound(runtime.engine, support_mail(subject=f"ärende {index}",
                                                   body=f"Fråga nummer {index}.\n"),
                      transport="smtp")
    queue_of_version: dict[str, str] = {live.current.version: "web"}
    stop = threading.Event()

    def edit_and_reload() -> None:
        """Flip between A and B, recording each set that came into force and its queue."""
        flip = False
        while not stop.is_set():
            flip = not flip
            target = version_b if flip else version_a
            # An admin's editor writes one file, then the other: in between the set is broken.
            for name in (CUSTOMER, "queues.toml"):
                (rules_dir / name).write_text(target[name], encoding="utf-8")
                if live.reload():
                    current = live.current
                    queue_of_version[current.version] = current.customers["bergstroms-bygg"].queue
            time.sleep(0.002)

    with capture_logs() as logs:
        editor = threading.Thread(target=edit_and_reload)
        editor.start()
        try:
            counts = processor.run_pending()
        finally:
            stop.set()
            editor.join()
    assert counts["processed"] == 150
    assert any(event["event"] == "rules.reload_refused" for event in logs)
    assert {"web", "webb2"} <= set(queue_of_version.values()), "both versions were in force"
    seen = set()
    with Session(runtime.engine) as session:
        for row in session.exec(select(Inbound)):
            assert row.decision is not None
            version = row.decision["rules_version"]
            assert version in queue_of_version, "a decision used a set that was never loaded"
            assert row.decision["queue"] == queue_of_version[version]
            seen.add(version)
    assert {queue_of_version[v] for v in seen} == {"web", "webb2"}, "routed under both"


def test_broken_rules_on_reload_keep_the_old_rules(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES, rules_dir)
    live = LiveRules(rules_dir)
    before = live.current
    (rules_dir / "queues.toml").write_text("[web\n")
    with capture_logs() as logs:
        assert live.reload() is False
    assert live.current is before
    [event] = [e for e in logs if e["event"] == "rules.reload_refused"]
    assert event["version_kept"] == before.version
    assert event["problems"][0].startswith(f"{rules_dir / 'queues.toml'}:1: TOML syntax error")


def test_maild_does_not_start_on_broken_rules(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    with pytest.raises(RulesError):
        LiveRules(tmp_path / "rules")


def test_file_changes_are_picked_up_once_they_settle(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES, rules_dir)
    live = LiveRules(rules_dir)
    before = live.current.version
    _, version_b = _versions(rules_dir)

    async def scenario() -> None:
        watcher = asyncio.create_task(live.watch(interval=0.05, settle=0.2))
        for name, text in version_b.items():
            (rules_dir / name).write_text(text, encoding="utf-8")
            await asyncio.sleep(0.02)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if live.current.version != before:
                break
        watcher.cancel()

    asyncio.run(scenario())
    assert live.current.version != before
    assert live.current.customers["bergstroms-bygg"].queue == "webb2"
