"""Several maild processes on one PostgreSQL database: no ticket number is handed out twice."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlmodel import Session, col, select

from maild.intake import store_inbound
from maild.models import Inbound, Ticket
from maild.runtime import open_runtime
from tests.conftest import ROOT, make_config
from tests.mailmaker import support_mail

PER_PROCESS = 200

_WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from maild.runtime import open_runtime
    from maild.intake import store_inbound
    from tests.conftest import make_config
    from tests.mailmaker import support_mail
    from maild.log import configure_logging

    configure_logging("warning", "json")
    url, tmp, role = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    runtime = open_runtime(make_config(tmp, url))
    processor = runtime.processor()
    if role.startswith("own"):
        for index in range({per}):
            raw = support_mail(subject=f"{{role}} {{index}}", body=f"Fråga {{role}} {{index}}.\\n")
            stored = store_inbound(runtime.engine, raw, transport="smtp")
            outcome = processor.process_now(stored.inbound_id)
            assert outcome is not None and outcome.state == "processed", outcome
    else:
        counts = processor.run_pending()
        print(counts["processed"])
""").format(per=PER_PROCESS)


def _start(url: str, tmp: Path, role: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _WORKER, url, str(tmp), role], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT),
                                 "MAILD_LOG_LEVEL": "warning"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _numbers(url: str, tmp: Path) -> list[str]:
    runtime = open_runtime(make_config(tmp, url))
    with Session(runtime.engine) as session:
        numbers = [t.number for t in session.exec(select(Ticket).order_by(col(Ticket.id)))]
    runtime.engine.dispose()
    return numbers


def test_two_processes_allocating_200_tickets_each_never_collide(postgres_url: str,
                                                                 tmp_path: Path) -> None:
    open_runtime(make_config(tmp_path, postgres_url)).engine.dispose()
    workers = [_start(postgres_url, tmp_path, f"own-{i}") for i in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()[-2000:]
    numbers = _numbers(postgres_url, tmp_path)
    assert len(numbers) == 2 * PER_PROCESS
    assert len(set(numbers)) == len(numbers)
    sequences = sorted(int(number.split("-")[2]) for number in numbers)
    assert sequences == list(range(1, 2 * PER_PROCESS + 1)), "numbers are dense, no gaps"


def test_two_workers_share_one_queue_and_process_each_message_once(postgres_url: str,
                                                                   tmp_path: Path) -> None:
    runtime = open_runtime(make_config(tmp_path, postgres_url))
    for index in range(2 * PER_PROCESS):
        store_inbound(runtime.engine, support_mail(subject=f"kö {index}",
                                                   body=f"Ärende nummer {index}.\n"),
                      transport="smtp")
    workers = [_start(postgres_url, tmp_path, f"shared-{i}") for i in range(2)]
    processed = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()[-2000:]
        processed.append(int(out.decode().strip()))
    assert sum(processed) == 2 * PER_PROCESS
    assert all(count > 0 for count in processed), f"both workers took work: {processed}"
    numbers = _numbers(postgres_url, tmp_path)
    assert len(numbers) == len(set(numbers)) == 2 * PER_PROCESS
    with Session(runtime.engine) as session:
        rows = session.exec(select(Inbound)).all()
        assert all(row.state == "processed" and row.attempts == 1 for row in rows)
    runtime.engine.dispose()
