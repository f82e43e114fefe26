"""How long `maild deliver` takes to start and store one message, against a bare Python start.

An MTA pipe runs `maild deliver` once per message, so its start-up is its cost.
This runs, N times each and one after the other: `python -c pass` (the floor),
`maild deliver` (store only: what Postfix runs), and `maild deliver --process`
(store, then the whole pipeline), into a database made beforehand. It prints
the median wall time and CPU time (user + system) of each, the ratio of each
to the bare start, and as its last line one JSON object.
Usage: python bench/deliver_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESSAGE = ("From: Anna Lind <anna.lind@bergstromsbygg.se>\r\nTo: support@example.se\r\n"
           "Subject: Bokningssidan visar fel pris ({n})\r\nMessage-ID: <start-{n}@bench>\r\n"
           "\r\nHej! Fel pris i kassan sedan i morse.\r\n")


def measure(command: list[str], runs: int, cwd: Path, env: dict[str, str],
            message: bool) -> tuple[float, float]:
    """Median wall and CPU seconds of `runs` runs of `command` (fed a new message each time)."""
    walls, cpus = [], []
    for n in range(runs):
        data = MESSAGE.format(n=f"{time.time_ns()}-{n}").encode() if message else None
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, env=env, input=data, capture_output=True,
                              check=False)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}: "
                             f"{done.stderr.decode(errors='replace')}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        (work / "rules").symlink_to(ROOT / "rules")
        env = {key: value for key, value in os.environ.items() if not key.startswith("MAILD_")}
        env["PYTHONPATH"] = str(ROOT)
        # Every module's bytecode compiled once, as an installed system has it: in a cache
        # of the bench's own, written by one untimed run of each command. Where
        # PYTHONDONTWRITEBYTECODE is set, a cache that is never written left the standard
        # library and the dependencies compiled from source at every run (`maild deliver`
        # measured 0.53-0.70 s instead of 0.12-0.13 s).
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        script = Path(python).parent / "maild"  # the console script Postfix runs
        maild = [str(script)] if script.exists() else [python, "-m", "maild.cli"]
        subprocess.run([*maild, "process"], cwd=work, env=env, check=True,
                       capture_output=True)  # the database, migrated, before timing
        commands = {
            "python -c pass": ([python, "-c", "pass"], args.runs, False),
            "maild deliver": ([*maild, "deliver", "support@example.se"], args.runs, True),
            "maild deliver --process": ([*maild, "deliver", "--process", "support@example.se"],
                                        max(3, args.runs // 4), True),
        }
        for command, _, message in commands.values():
            measure(command, 1, work, env, message)  # compiles what it imports
        results = {label: measure(command, runs, work, env, message)
                   for label, (command, runs, message) in commands.items()}
    bare_wall, bare_cpu = results["python -c pass"]
    print(f"{'command':<26}{'wall ms':>9}{'cpu ms':>9}{'wall/bare':>11}{'cpu/bare':>10}")
    for label, (wall, cpu) in results.items():
        print(f"{label:<26}{wall * 1000:>9.1f}{cpu * 1000:>9.1f}{wall / bare_wall:>11.2f}"
              f"{cpu / bare_cpu:>10.2f}")
    wall, cpu = results["maild deliver"]
    print(json.dumps({
        "runs": args.runs,
        "bare_python_ms": round(bare_wall * 1000, 1),
        "deliver_ms": round(wall * 1000, 1),
        "deliver_cpu_ms": round(cpu * 1000, 1),
        "deliver_ratio_to_bare": round(wall / bare_wall, 2),
        "deliver_process_ms": round(results["maild deliver --process"][0] * 1000, 1),
    }))


if __name__ == "__main__":
    main()
