"""Operating `maild run`: reload on SIGHUP, systemd notifications, exit codes, defaults."""

from __future__ import annotations

import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, RULES
from tests.daemon_helpers import free_port, listening, make_daemon, wait_until
from tests.mailmaker import support_mail


def _rcpt(port: int, address: str) -> int:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("client.example")
        client.mail("x@bergstromsbygg.se")
        code, _ = client.rcpt(address)
        return code


def test_sighup_reloads_rules_and_keeps_them_when_broken(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    running = make_daemon(tmp_path, rules=rules)
    running.start()
    try:
        assert _rcpt(running.smtp_port, "drift@example.se") == 550
        with (rules / "addresses.toml").open("a", encoding="utf-8") as file:
            file.write('\n[[address]]\naddress = "drift@example.se"\nqueue = "operations"\n')
        running.signal(signal.SIGHUP)
        wait_until(lambda: _rcpt(running.smtp_port, "drift@example.se") == 250,
                   what="the new support address after SIGHUP")
        (rules / "queues.toml").write_text("[broken\n", encoding="utf-8")
        running.signal(signal.SIGHUP)
        wait_until(lambda: "rules.reload_refused" in running.log(), what="the refusal")
        assert _rcpt(running.smtp_port, "drift@example.se") == 250, "old rules still run"
        assert "queues.toml:1: TOML syntax error" in running.log()
        assert running.process is not None and running.process.poll() is None
    finally:
        assert running.stop() == 0


def test_systemd_notifications(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(notify_path))
    receiver.settimeout(10)
    running = make_daemon(tmp_path, env={"NOTIFY_SOCKET": str(notify_path),
                                         "WATCHDOG_USEC": "400000"})
    running.start()
    messages: list[str] = []

    def until(prefix: str, containing: str = "") -> None:
        deadline = time.monotonic() + 10
        while not any(m.startswith(prefix) and containing in m for m in messages):
            assert time.monotonic() < deadline, f"no {prefix}...{containing} in {messages}"
            messages.extend(receiver.recv(4096).decode().splitlines())

    try:
        until("READY=1")
        until("STATUS=smtp 127.0.0.1:")
        until("WATCHDOG=1")
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail("anna.lind@bergstromsbygg.se", ["support@example.se"],
                            support_mail())
        wait_until(lambda: running.count("ticket") == 1)
        until("STATUS=smtp 127.0.0.1:", containing="stored 1, processed 1")
    finally:
        running.signal(signal.SIGTERM)
        until("STOPPING=1")
        assert running.stop() == 0
        receiver.close()


def _run_until_exit(cwd: Path, *args: str, env: dict[str, str] | None = None) -> \
        subprocess.CompletedProcess[str]:
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
    environment.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "maild.cli", *args], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=60,
                          check=False)


def test_broken_rules_stop_the_start_with_78(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    result = _run_until_exit(tmp_path, "run", "--smtp", f"127.0.0.1:{free_port()}")
    assert result.returncode == 78
    assert "the rules in" in result.stderr and "have problems" in result.stderr
    assert "addresses.toml: file is missing" in result.stderr


def test_a_port_in_use_exits_69(tmp_path: Path) -> None:
    (tmp_path / "rules").symlink_to(RULES)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run_until_exit(tmp_path, "run", "--smtp", f"127.0.0.1:{port}")
    assert result.returncode == 69
    assert f"cannot listen for SMTP on 127.0.0.1:{port}" in result.stderr


def test_an_unreachable_database_exits_75(tmp_path: Path) -> None:
    (tmp_path / "rules").symlink_to(RULES)
    result = _run_until_exit(tmp_path, "run", "--smtp", f"127.0.0.1:{free_port()}", env={
        "MAILD_DATABASE_URL": "postgresql+psycopg://maild@127.0.0.1:1/maild"})
    assert result.returncode == 75
    assert "daemon.database_unavailable" in result.stderr


def test_a_bad_listen_option_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "rules").symlink_to(RULES)
    result = _run_until_exit(tmp_path, "run", "--smtp", "localhost")
    assert result.returncode == 78
    assert "expected HOST:PORT or unix:PATH, got 'localhost'" in result.stderr


def test_with_no_configuration_it_listens_on_2525(tmp_path: Path) -> None:
    if listening(2525):
        pytest.skip("port 2525 is taken on this machine")
    running = make_daemon(tmp_path)
    running.args = ["run"]
    running.smtp_port = 2525
    running.start()
    try:
        with smtplib.SMTP("127.0.0.1", 2525) as client:
            assert client.sendmail("x@okand.se", ["faktura@example.se"], support_mail()) == {}
        wait_until(lambda: running.count("ticket") == 1)
    finally:
        assert running.stop() == 0


def test_the_worker_survives_a_failing_pass(tmp_path: Path) -> None:
    import asyncio

    from sqlalchemy.exc import OperationalError

    from maild.daemon import Daemon
    from maild.intake import store_inbound
    from maild.routing.reload import LiveRules
    from maild.runtime import open_runtime
    from tests.conftest import make_config

    runtime = open_runtime(make_config(tmp_path, **{"daemon.worker_interval": 0.05}))
    processor = runtime.processor()
    real = processor.run_pending
    calls: list[str] = []

    def flaky(**kwargs: object) -> object:
        calls.append("pass")
        if len(calls) == 1:
            raise OperationalError("UPDATE inbound", {}, Exception("database is locked"))
        return real(**kwargs)  # type: ignore[arg-type]

    processor.run_pending = flaky  # type: ignore[method-assign]
    store_inbound(runtime.engine, support_mail(), transport="smtp")

    async def scenario() -> int:
        daemon = Daemon(config=runtime.config, live=LiveRules(runtime.config.rules_dir),
                        processor=processor)
        task = asyncio.create_task(daemon.process_loop())
        for _ in range(100):
            await asyncio.sleep(0.05)
            if daemon.counters.processed:
                break
        daemon.stopping.set()
        await asyncio.wait_for(task, 5)
        return daemon.counters.processed

    assert asyncio.run(scenario()) == 1
    assert len(calls) >= 2, "a failed pass was followed by another"
