"""Processing alone, per message: bench/run.py's (c) and (d) without the SMTP parts, with a profile.

Stores N of bench/run.py's mails (in groups of 64, as intake commits them), then
times one pass of the processing worker over them (the rules loaded before), in
wall-clock and CPU time, and bare mail-parser on the same bytes. With --vary
every mail has a body of its own (the benchmark's all share one, which caches
can make look cheaper); with --profile the pass runs under cProfile and its top
entries are printed.
Usage: python bench/processing.py [-n 300] [--attachment] [--vary] [--profile TOP]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import mailparser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import make_message  # noqa: E402

from maild.config import load_config  # noqa: E402
from maild.intake import Arrival, store_batch  # noqa: E402
from maild.log import configure_logging  # noqa: E402
from maild.runtime import open_runtime  # noqa: E402


def messages(count: int, attachment: bool, vary: bool) -> list[bytes]:
    """bench/run.py's mails; with `vary`, each with a sentence of its own in the body."""
    made = [make_message(index, attachment) for index in range(count)]
    if vary:
        made = [raw.replace(b"Windows 11.", b"Windows 11 (bokning %d, rum %d)." % (
            index, index * 7 % 113)) for index, raw in enumerate(made)]
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=300, help="messages")
    parser.add_argument("--attachment", action="store_true", help="with a 100 KB attachment")
    parser.add_argument("--vary", action="store_true", help="a different body in every mail")
    parser.add_argument("--profile", type=int, metavar="TOP", default=0,
                        help="profile the pass and print its TOP entries")
    args = parser.parse_args()
    configure_logging("error", "json")
    raws = messages(args.n, args.attachment, args.vary)
    with tempfile.TemporaryDirectory() as directory:
        runtime = open_runtime(load_config(env={}, overrides={
            "data_dir": directory, "rules_dir": str(ROOT / "rules")}))
        for start in range(0, len(raws), 64):
            store_batch(runtime.engine, [
                Arrival(raw=raw, transport="smtp", envelope_sender="anna.lind@bergstromsbygg.se",
                        recipients=["support@example.se"]) for raw in raws[start:start + 64]])
        processor = runtime.processor()
        runtime.rules  # noqa: B018 - loaded before the pass: start-up, not processing
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        counts = processor.run_pending()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profile is not None:
            profile.disable()
        assert counts["processed"] == args.n, counts
        runtime.engine.dispose()
    parse = time.perf_counter()
    for raw in raws:
        mailparser.parse_from_bytes(raw)
    parse = time.perf_counter() - parse
    kind = "attachment" if args.attachment else "small"
    print(f"{args.n} {kind} mails{' (each body its own)' if args.vary else ''}: processing "
          f"{wall / args.n * 1000:.2f} ms a mail ({args.n / wall:.0f}/s), "
          f"{cpu / args.n * 1000:.2f} ms CPU; mail-parser "
          f"{parse / args.n * 1000:.2f} ms ({args.n / parse:.0f}/s); c/d {parse / wall:.3f}")
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
