"""Instructions per message processed, counted by valgrind: a measure free of the machine's noise.

Wall-clock rates on a shared development machine move by ±10% from run to run, more
than most single changes to processing gain. valgrind's callgrind counts the
instructions executed instead, the same to within 0.2% from run to run, whatever
else the machine is doing. The script runs a small program twice under callgrind:
it stores the messages in a fresh SQLite database and loads the rules, then once it
processes them (`run_pending`) and once it does not; the difference divided by the
number of messages is what processing one costs. Mail: `small` is bench/run.py's
small support mail, `mixed` bench/vs_helpdesk.py's mixed mailbox (scaled to
--messages). With --against REV the same is counted for a git revision of maild
(its own code, this tree's bench and rules) and the change is printed.
Needs valgrind (Debian's package); a run of 200 messages takes a minute or two.
Usage: python bench/instructions.py [--mail small|mixed] [--messages 200] [--against REV]
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
# argv: the tree, bench directory, rules directory, mail kind, messages, "1" to process.
_PROGRAM = r'''
import sys, tempfile
tree, bench, rules, kind, count, process = sys.argv[1:7]
sys.path[:0] = [tree, bench]
from maild.config import load_config
from maild.intake import Arrival, store_batch
from maild.log import configure_logging
from maild.runtime import open_runtime

configure_logging("error", "json")
if kind == "mixed":
    import vs_helpdesk
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
    stored = 0
    for first in range(0, len(arrivals), 64):
        stored += sum(1 for result in store_batch(runtime.engine, arrivals[first:first + 64])
                      if not getattr(result, "duplicate", True))
    processor = runtime.processor()
    runtime.rules  # loaded before, in both runs
    if process == "1":
        counts = processor.run_pending()
        assert counts["processed"] == stored, counts  # a message twice is stored once
    runtime.engine.dispose()
'''


def _run(tree: Path, kind: str, messages: int, process: bool, under: list[str]) -> str:
    """The program run once on `tree`'s maild (under `under`, a tool, or none); its stderr."""
    result = subprocess.run(
        [*under, sys.executable, "-c", _PROGRAM, str(tree), str(ROOT / "bench"),
         str(ROOT / "rules"), kind, str(messages), "1" if process else "0"],
        capture_output=True, text=True, cwd=tree, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"})
    if result.returncode != 0:
        sys.exit(f"the program failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stderr


def collected(tree: Path, kind: str, messages: int, process: bool) -> int:
    """The instructions callgrind counts for one run of the program on `tree`'s maild."""
    with tempfile.TemporaryDirectory() as directory:
        stderr = _run(tree, kind, messages, process,
                      ["valgrind", "--tool=callgrind", f"--callgrind-out-file={directory}/out"])
    found = re.search(r"Collected : (\d+)", stderr)
    if found is None:
        sys.exit(f"valgrind counted nothing:\n{stderr[-2000:]}")
    return int(found.group(1))


def per_message(tree: Path, kind: str, messages: int) -> float:
    """Instructions that processing one message costs with `tree`'s maild.

    A first run without valgrind compiles every module to bytecode, so that neither
    counted run pays for compiling what only processing imports.
    """
    _run(tree, kind, messages, True, [])
    return (collected(tree, kind, messages, True)
            - collected(tree, kind, messages, False)) / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mail", choices=("small", "mixed"), default="small")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with")
    args = parser.parse_args()
    now = per_message(ROOT, args.mail, args.messages)
    result: dict[str, object] = {"mail": args.mail, "messages": args.messages,
                                 "instructions_per_message": round(now)}
    if args.against:
        with tempfile.TemporaryDirectory() as directory:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.against],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
            before = per_message(Path(directory), args.mail, args.messages)
        result.update(against=args.against, instructions_before=round(before),
                      change=round(now / before - 1, 4))
        print(f"{args.against}: {before / 1e6:.2f} M instructions a message")
    print(f"this tree: {now / 1e6:.2f} M instructions a message ({args.mail} mail, "
          f"{args.messages} messages)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
