"""The bench scripts, run at their smallest: each runs through and reports what it promises.

The figures of `bench/` are what the performance work is judged by, so a script
that no longer runs, or whose last line lost a figure, must fail here rather than
on the day someone measures. Nothing here judges a figure's size (that is the
bench's own work, on a quiet machine): a rate is only asked to be a rate.
django-helpdesk's side of `bench/vs_helpdesk.py` installs from PyPI and
`bench/instructions.py` needs valgrind, so neither runs here; the maild side of
the comparison does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, _postgres_admin, skip_or_fail

BENCH = ROOT / "bench"

pytestmark = pytest.mark.slow


def _output(script: str, *args: str) -> str:
    """What `bench/<script>` run with `args` printed; it must have succeeded."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAILD_")}
    done = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _bench(script: str, *args: str) -> tuple[str, Any]:
    """`_output`, and its last line read as the JSON object it must be."""
    out = _output(script, *args)
    return out, json.loads(out.strip().splitlines()[-1])


def _rate(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def _need_postgres() -> None:
    try:
        _postgres_admin().close()  # type: ignore[attr-defined]
    except Exception as error:
        skip_or_fail(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({error})")


def test_run_reports_every_ratio_of_both_mails() -> None:
    """The full table and last line, with processing in 1, 2 and 3 processes on PostgreSQL
    where it runs, and `processes` null (said why) where it does not."""
    try:
        _postgres_admin().close()  # type: ignore[attr-defined]
        postgres = True
    except Exception:
        postgres = False
    out, figures = _bench("run.py", "--messages", "12", "--rounds", "1", "--no-helpdesk")
    for kind in ("small", "attachment"):
        assert any(line.startswith(kind) for line in out.splitlines()), out
        measured = figures["by_kind"][kind]
        for name in ("null_per_s", "floor_per_s", "accept_per_s", "process_per_s",
                     "process2_per_s", "parse_per_s", "p50_accept_ms", "p99_accept_ms"):
            assert _rate(measured[name]), (kind, name, measured)
        assert {name: len(values) for name, values in figures["ratios_by_round"][kind].items()
                } == {"b/a": 1, "b/floor": 1, "c/d": 1, "c2/d": 1}
    for name in ("accept_vs_null", "accept_vs_floor", "process_vs_parse",
                 "process_2_processes_vs_parse", "p99_accept_ms", "peak_rss_mb"):
        assert _rate(figures[name]), (name, figures)
    # What was skipped says so, as null, rather than leaving the key out.
    assert figures["vs_helpdesk"] is None and figures["vs_helpdesk_processes"] is None
    assert figures["rounds"] == 1
    if not postgres:
        assert figures["processes"] is None
        skip_or_fail("PostgreSQL is not reachable on 127.0.0.1:5432: `processes` not measured")
    assert set(figures["processes"]) == {"1", "2", "3"}, figures["processes"]
    assert all(_rate(value) for value in figures["processes"].values()), figures["processes"]


def test_run_refuses_no_rounds() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "run.py"), "--rounds", "0"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "--rounds" in done.stderr, done.stderr


@pytest.mark.postgres
def test_instances_reports_processing_and_accept_by_processes() -> None:
    _need_postgres()
    _, figures = _bench("instances.py", "--messages", "20", "--accept-messages", "20")
    assert set(figures["processes"]) == {"1", "2", "3"}
    assert set(figures["accept_instances"]) == {"1", "2"}
    assert all(_rate(value) for value in [*figures["processes"].values(),
                                           *figures["accept_instances"].values()]), figures
    assert figures["messages"] == 20 and figures["accept_messages"] == 20


_MAILD_SIDE = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import vs_helpdesk
messages, mix = vs_helpdesk.build_messages(int(sys.argv[2]))
with tempfile.TemporaryDirectory() as directory:
    work = Path(directory)
    folder, warm_up = work / "messages", work / "warm-up"
    folder.mkdir(); warm_up.mkdir()
    for number, mail in enumerate(messages, start=1):
        (folder / f"{number:06d}.eml").write_bytes(mail.raw)
    for number, raw in enumerate(vs_helpdesk.warm_up_messages(), start=1):
        (warm_up / f"{number:06d}.eml").write_bytes(raw)
    run = vs_helpdesk.run_maild(folder, warm_up, work, workers=int(sys.argv[3]))
print(json.dumps({"mix": mix, "kinds": [mail.kind for mail in messages], "run": run}))
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_vs_helpdesk_maild_side_processes_the_whole_mix(workers: int) -> None:
    done = subprocess.run([sys.executable, "-c", _MAILD_SIDE, str(BENCH), "85", str(workers)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    mix, run = result["mix"], result["run"]
    # The mix scaled to 85 messages keeps every kind, and is what the set holds.
    assert sum(mix.values()) == 85 and all(count > 0 for count in mix.values()), mix
    assert len(result["kinds"]) == 85
    assert run["messages"] == 85 and run["workers"] == workers
    outcomes = run["outcomes"]
    # Every message stored was processed; what was not stored was a copy of another.
    assert outcomes["processed"] == run["stored"] >= 80, run
    assert outcomes.get("kind:followup", 0) > 0 and outcomes.get("kind:bounce", 0) > 0, outcomes
    assert _rate(run["per_s"])


def test_vs_helpdesk_refuses_no_rounds() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "vs_helpdesk.py"), "--rounds", "0"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "--rounds" in done.stderr, done.stderr


def test_memory_reports_each_size() -> None:
    _, figures = _bench("memory.py", "--sizes", "1")
    [measured] = figures["memory_per_message_mb"]
    assert 0.9 < measured["message_mb"] < 1.2, measured
    for name in ("rss_added_mb", "mb_per_message_mb", "live_mb_per_message_mb",
                 "store_mb_per_message_mb", "live_store_mb_per_message_mb"):
        assert isinstance(measured[name], int | float) and measured[name] >= 0, (name, measured)


@pytest.mark.parametrize("against", ["maild", "floor"])
def test_offered_takes_every_mail_at_its_rate(against: str) -> None:
    _, figures = _bench("offered.py", "--rate", "20", "--seconds", "1", "--against", against)
    assert figures["against"] == against and figures["messages"] == 20, figures
    assert _rate(figures["achieved_per_s"]) and _rate(figures["p99_ms"]), figures
    assert figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"], figures
    assert figures["peak_rss_mb"] and all(_rate(value) for value in
                                          figures["peak_rss_mb"].values()), figures
    if against == "maild":  # the daemon processed what it took, and said when
        assert figures["processed_all_within_s"] is not None, figures


def test_processing_alone_prints_its_ratio() -> None:
    out = _output("processing.py", "-n", "10")
    assert "10 small mails: processing" in out and "c/d" in out, out


def test_deliver_start_against_a_bare_python() -> None:
    _, figures = _bench("deliver_start.py", "--runs", "1")
    assert figures["runs"] == 1 and _rate(figures["deliver_ms"]), figures
    assert _rate(figures["bare_python_ms"]) and _rate(figures["deliver_ratio_to_bare"]), figures


def test_compose_times_every_case() -> None:
    _, figures = _bench("compose.py")
    assert set(figures) == {"subject/ascii", "subject/non-ascii", "display-name/ascii",
                            "display-name/non-ascii"}, figures
    assert all(isinstance(seconds, int | float) and seconds >= 0
               for sizes in figures.values() for seconds in sizes.values())


def test_bench_folder_holds_no_untested_script() -> None:
    """A new bench script is added to this file too (or named here with why it is not run)."""
    not_run_here = {"instructions.py": "needs valgrind", "helpdesk_driver.py": "needs Django",
                    # A change may mean its records to differ from the revision compared with.
                    "same_records.py": "compares with another revision"}
    tested = Path(__file__).read_text(encoding="utf-8")
    for script in sorted(path.name for path in BENCH.glob("*.py")):
        assert script in not_run_here or f'"{script}"' in tested, script
