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
printed. With --path ingest, it counts what `maild ingest` costs a message, as
bench/vs_helpdesk.py runs it: stored 64 to a commit, then processed, against a run that
stores and processes none. With --helpdesk (which implies --path ingest), the same
messages also go through django-helpdesk's ingestion (bench/helpdesk_driver.py in the
environment bench/vs_helpdesk.py makes for it, its warm-up thread first in both runs),
counted against the driver given no message, and the ratio of the two is printed: the
instructions each system executes for one message, which the machine's speed does not
move (the time each waits for its disk is not among them).
With --path parse, it counts bare mail-parser's parse of a message (bench/run.py's d), the
part of any of these that is mail-parser's own (a message it gives up on, as it does on
some of the mixed mailbox's malformed mail, counts what it did until then).
Needs valgrind (Debian's package); a run of 200 messages takes a few minutes, and
django-helpdesk's about five more.
Usage: python bench/instructions.py [--path processing|intake|ingest|parse] [--mail small|mixed]
                                    [--messages 200] [--against REV] [--helpdesk]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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
    if stage == "parse":  # bench/run.py's (d): bare mail-parser, nothing stored
        import mailparser
        for arrival in arrivals:
            try:  # it gives up on some malformed mail, which counts what it did until then
                mailparser.parse_from_bytes(arrival.raw)
            except Exception:
                pass
    elif stage != "none":
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
PATHS = {"processing": ("process", "store", 64), "intake": ("store", "none", 2),
         "ingest": ("process", "none", 64), "parse": ("parse", "none", 64)}


def counted(command: list[str], cwd: Path | str, what: str, *, valgrind: bool = True) -> int:
    """The instructions callgrind counts for one run of `command` (run plainly, and 0
    returned, without `valgrind`); exits with its stderr's end if it fails."""
    with tempfile.TemporaryDirectory() as directory:
        tool = (["valgrind", "--tool=callgrind", f"--callgrind-out-file={directory}/out"]
                if valgrind else [])
        result = subprocess.run([*tool, *command], capture_output=True, text=True, cwd=cwd,
                                check=False, env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"})
    if result.returncode != 0:
        sys.exit(f"{what} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    if not valgrind:
        return 0
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        sys.exit(f"valgrind counted nothing:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def _program(tree: Path, kind: str, messages: int, stage: str, batch: int) -> list[str]:
    """The command that runs the program on `tree`'s maild."""
    return [sys.executable, "-c", _PROGRAM, str(tree), str(ROOT / "bench"), str(ROOT / "rules"),
            kind, str(messages), stage, str(batch)]


def per_message(tree: Path, kind: str, messages: int, path: str = "processing") -> float:
    """Instructions that processing (or storing) one message costs with `tree`'s maild.

    A first run without valgrind compiles every module to bytecode, so that neither
    counted run pays for compiling what only the counted stage imports.
    """
    stage, against, batch = PATHS[path]

    def program(run_stage: str, *, valgrind: bool = True) -> int:
        return counted(_program(tree, kind, messages, run_stage, batch), tree, "the program",
                       valgrind=valgrind)

    program(stage, valgrind=False)
    return (program(stage) - program(against)) / messages


def _bench_modules() -> tuple[Any, Any]:
    """bench/run.py and bench/vs_helpdesk.py, imported from this tree."""
    if str(ROOT / "bench") not in sys.path:
        sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import run
    import vs_helpdesk

    return run, vs_helpdesk


def _write_mail(folder: Path, kind: str, messages: int) -> None:
    """The messages the program stores for `kind`, one file each, in the program's order."""
    run, vs_helpdesk = _bench_modules()
    folder.mkdir()
    made = ([mail.raw for mail in vs_helpdesk.build_messages(messages)[0]] if kind == "mixed"
            else [run.make_message(index, False) for index in range(messages)])
    for number, raw in enumerate(made, start=1):
        (folder / f"{number:06d}.eml").write_bytes(raw)


def helpdesk_per_message(kind: str, messages: int) -> float:
    """Instructions that django-helpdesk's ingestion executes for one of the messages."""
    _, vs_helpdesk = _bench_modules()
    python = vs_helpdesk.helpdesk_python()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        _write_mail(work / "mail", kind, messages)
        (work / "none").mkdir()
        (work / "warm-up").mkdir()
        for number, raw in enumerate(vs_helpdesk.warm_up_messages(), start=1):
            (work / "warm-up" / f"{number:06d}.eml").write_bytes(raw)

        def driver(folder: Path) -> list[str]:
            """The command that runs django-helpdesk's ingestion of `folder`."""
            return [str(python), str(ROOT / "bench" / "helpdesk_driver.py"), str(folder),
                    "--address", "support@example.se", "--warm-up", str(work / "warm-up")]

        what = "django-helpdesk's run"
        # The first run compiles the driver's imports to bytecode.
        counted(driver(work / "mail"), work, what, valgrind=False)
        return (counted(driver(work / "mail"), work, what)
                - counted(driver(work / "none"), work, what)) / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", choices=tuple(PATHS),
                        help="what is counted: processing a stored message (the default), "
                             "storing one as the intake writer does, both as `maild "
                             "ingest` does, or parsing one with bare mail-parser")
    parser.add_argument("--mail", choices=("small", "mixed"), default="small")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with")
    parser.add_argument("--helpdesk", action="store_true",
                        help="count django-helpdesk's ingestion of the same messages too "
                             "(implies --path ingest)")
    args = parser.parse_args()
    if args.path is None:
        args.path = "ingest" if args.helpdesk else "processing"
    elif args.helpdesk and args.path != "ingest":
        parser.error("--helpdesk compares django-helpdesk with maild's --path ingest")
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
    if args.helpdesk:
        helpdesk = helpdesk_per_message(args.mail, args.messages)
        result.update(helpdesk_instructions_per_message=round(helpdesk),
                      vs_helpdesk=round(helpdesk / now, 2))
        version = _bench_modules()[1].HELPDESK_VERSION
        print(f"django-helpdesk {version}: {helpdesk / 1e6:.2f} M instructions a message; "
              f"maild executes {helpdesk / now:.2f} times fewer")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
