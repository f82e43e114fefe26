"""Instructions per message processed, counted by valgrind: a measure free of the machine's noise.

Wall-clock rates on a shared development machine move by ±10% from run to run, more
than most single changes to processing gain. valgrind's callgrind counts the
instructions executed instead, the same to within 0.2% from run to run, whatever
else the machine is doing. The script runs a small program twice under callgrind.
Both runs first store and process bench/vs_helpdesk.py's warm-up thread (three mails),
so that what a running daemon has done once (modules imported, templates and
statements compiled) is in both; then they store the messages in the same SQLite
database and load the rules, and once the program processes them (`run_pending`) and
once it does not: the difference divided by the number of messages is what processing
one costs. With --path intake, it counts what storing one costs instead, as the
daemon's intake writer stores them (batches of two, about what four SMTP clients give
it, on a connection it keeps): a run that stores them against one that does not.
Mail: `small` is bench/run.py's small support mail, `mixed` bench/vs_helpdesk.py's
mixed mailbox (scaled to --messages). With --against REV the same is counted for a
git revision of maild (its own code, this tree's bench and rules) and the change is
printed. Needs valgrind (Debian's package); a run of 200 messages takes a few minutes.
Usage: python bench/instructions.py [--path processing|intake] [--mail small|mixed]
                                    [--messages 200] [--against REV]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run under callgrind with the tree under test first on sys.path (and as the current
# directory, which `python -c` puts before it):
# argv: the tree, bench directory, rules directory, mail kind, messages, how far to go
# ("none", "store" or "process") and how many messages to store in one batch.
_PROGRAM = r'''
import sys, tempfile
tree, bench, rules, kind, count, stage, batch = sys.argv[1:8]
sys.path[:0] = [tree, bench]
from maild.config import load_config
from maild.intake import Arrival, store_batch
from maild.log import configure_logging
from maild.runtime import open_runtime

configure_logging("error", "json")
import vs_helpdesk
if kind == "mixed":
    from maild.commands.intake import envelope_sender_of
    mails, _ = vs_helpdesk.build_messages(int(count))
    arrivals = [Arrival(mail.raw, "file", envelope_sender_of(mail.raw),
                        ["support@example.se"], "bench") for mail in mails]
else:
    import run
    arrivals = [Arrival(run.make_message(index, False), "smtp", "kund@bench.example",
                        ["support@example.se"], "bench") for index in range(int(count))]
# A heartbeat thread may still be writing its last renewal when the program ends.
with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as data:
    runtime = open_runtime(load_config(env={}, overrides={"data_dir": data,
                                                          "rules_dir": rules}))
    vs_helpdesk.warm_up(runtime)
    stored, size = 0, int(batch)
    if stage != "none":
        with runtime.engine.connect() as writer:  # as the intake writer keeps its connection
            for first in range(0, len(arrivals), size):
                stored += sum(1 for result in store_batch(
                    runtime.engine, arrivals[first:first + size], connection=writer)
                              if not getattr(result, "duplicate", True))
    processor = runtime.processor()
    runtime.rules  # loaded before, in every run
    if stage == "process":
        counts = processor.run_pending()
        assert counts["processed"] == stored, counts  # a message twice is stored once
    runtime.engine.dispose()
'''


# Each path: the stage counted, the stage it is counted against, the batch stored.
PATHS = {"processing": ("process", "store", 64), "intake": ("store", "none", 2)}


def _run(tree: Path, kind: str, messages: int, stage: str, batch: int, *, under: list[str]
         ) -> str:
    """The program run once on `tree`'s maild (under `under`, a tool, or none); its stderr."""
    result = subprocess.run(
        [*under, sys.executable, "-c", _PROGRAM, str(tree), str(ROOT / "bench"),
         str(ROOT / "rules"), kind, str(messages), stage, str(batch)],
        capture_output=True, text=True, cwd=tree, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"})
    if result.returncode != 0:
        sys.exit(f"the program failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stderr


def collected(tree: Path, kind: str, messages: int, stage: str, batch: int) -> int:
    """The instructions callgrind counts for one run of the program on `tree`'s maild."""
    with tempfile.TemporaryDirectory() as directory:
        stderr = _run(tree, kind, messages, stage, batch, under=[
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={directory}/out"])
    found = re.search(r"Collected : (\d+)", stderr)
    if found is None:
        sys.exit(f"valgrind counted nothing:\n{stderr[-2000:]}")
    return int(found.group(1))


def per_message(tree: Path, kind: str, messages: int, path: str = "processing") -> float:
    """Instructions that processing (or storing) one message costs with `tree`'s maild.

    A first run without valgrind compiles every module to bytecode, so that neither
    counted run pays for compiling what only the counted stage imports.
    """
    stage, against, batch = PATHS[path]
    _run(tree, kind, messages, stage, batch, under=[])
    return (collected(tree, kind, messages, stage, batch)
            - collected(tree, kind, messages, against, batch)) / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", choices=tuple(PATHS), default="processing",
                        help="what is counted: processing a stored message (default), or "
                             "storing one as the intake writer does")
    parser.add_argument("--mail", choices=("small", "mixed"), default="small")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with")
    args = parser.parse_args()
    now = per_message(ROOT, args.mail, args.messages, args.path)
    result: dict[str, object] = {"path": args.path, "mail": args.mail, "messages": args.messages,
                                 "instructions_per_message": round(now)}
    if args.against:
        with tempfile.TemporaryDirectory() as directory:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.against],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
            before = per_message(Path(directory), args.mail, args.messages, args.path)
        result.update(against=args.against, instructions_before=round(before),
                      change=round(now / before - 1, 4))
        print(f"{args.against}: {before / 1e6:.2f} M instructions a message")
    print(f"this tree: {now / 1e6:.2f} M instructions a message ({args.path}, {args.mail} "
          f"mail, {args.messages} messages)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
