"""maild's performance, measured against its own building blocks on the same machine.

For a small text mail and for a mail with a 100 KB attachment it measures:
  (a) aiosmtpd with a handler that does nothing (the ceiling for SMTP intake),
  (b) maild's SMTP accept path: DATA → durable commit → 250,
  (c) maild's processing: parse → classify → correlate → route → ticket → ack queued,
      in one process, and (c2) in two (`maild ingest --workers 2`),
  (d) bare mail-parser parsing of the same messages,
  (f) the durable floor: a handler that appends the message to a file and fsyncs
      before 250, the physical limit of a durable accept on this disk; served by
      maild's SMTP server, which reads DATA a block at a time as (b) does (aiosmtpd's
      own reads it a line at a time, which would make the floor a limit of reading),
and prints throughput, p50/p99 accept latency, peak memory, the ratios b/a, b/f
(`accept_vs_floor`) and c/d, and as its last line one JSON object. Each kind is measured
in --rounds rounds (default 3), the two kinds alternated, and every figure is the median
of its rounds (the lower middle one of an even number, as bench/vs_helpdesk.py takes
it): on a shared machine one round of 300 small mails lasts a third of a second, and
the same code's rate moves by a quarter from one round to the next. The
ratios of each round are printed too. Before its clock, (c) has processed a thread of
three mails (a first mail, its follow-up, an out-of-office) on the same database, as
bench/vs_helpdesk.py does: maild's statements compiled and its code imported, as in a
running daemon. It also runs
bench/vs_helpdesk.py, maild against django-helpdesk 2.6.1 on a mixed support
mailbox (`vs_helpdesk`: one process each; `vs_helpdesk_processes`: maild in 1 and 2;
null with --no-helpdesk), and bench/instances.py's
processing with 1, 2 and 3 worker processes on PostgreSQL (`processes`, null with
--no-processes or without PostgreSQL).
Usage: python bench/run.py [--messages N] [--rounds N] [--no-helpdesk] [--no-processes]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import mailparser
from aiosmtpd.smtp import SMTP

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vs_helpdesk import warm_up  # noqa: E402

from maild.config import load_config  # noqa: E402
from maild.group_commit import GroupCommitter  # noqa: E402
from maild.heap import settle as settle_heap  # noqa: E402
from maild.intake import Arrival, store_batch  # noqa: E402
from maild.log import configure_logging  # noqa: E402
from maild.routing.reload import LiveRules  # noqa: E402
from maild.runtime import open_runtime  # noqa: E402
from maild.transports.smtp import IntakeHandler, MaildSMTP, make_server_factory  # noqa: E402
from maild.workers.side_by_side import SideBySide  # noqa: E402


def make_message(index: int, attachment: bool) -> bytes:
    """A realistic support mail; with `attachment`, a 100 KB PNG-like file rides along."""
    message = EmailMessage()
    message["From"] = "Anna Lind <anna.lind@bergstromsbygg.se>"
    message["To"] = "support@example.se"
    message["Subject"] = f"Bokningssidan visar fel pris ({index})"
    message["Message-ID"] = f"<bench-{attachment}-{index}-{time.time_ns()}@bergstromsbygg.se>"
    message["Date"] = "Mon, 16 Nov 2026 10:12:00 +0100"
    message.set_content("Hej!\n\nNär vi bokar ett rum visas fel pris i kassan sedan i morse, "
                        "kl 09.45. Chrome 131 på Windows 11.\n\nMed vänliga hälsningar\n"
                        "Anna Lind\nIT-ansvarig, Bergströms Bygg AB\n070-330 11 89\n")
    if attachment:
        message.add_attachment(os.urandom(100_000), maintype="image", subtype="png",
                               filename="skarmbild.png")
    return message.as_bytes(policy=SMTP_POLICY)


class DurableFloorHandler:
    """Appends each message to one file and fsyncs it before 250: a durable accept at its cheapest.

    The fsync runs in a thread, so that several connections' fsyncs can be in flight at
    once, as the disk allows; this is the physical limit any durable accept is measured by.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _append(self, data: bytes) -> None:
        os.write(self.fd, data)
        os.fsync(self.fd)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.to_thread(self._append, bytes(envelope.original_content or b""))
        return "250 OK"


class NullHandler:
    """An aiosmtpd handler that accepts everything and keeps nothing."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def serve_in_thread(factory: Callable[[], SMTP], on_start: Callable[[], Any] | None = None,
                    on_stop: Callable[[], Awaitable[None]] | None = None
                    ) -> tuple[int, Callable[[], None]]:
    """Start an SMTP server on a free loopback port in its own event loop thread."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0)
        holder.update(port=server.sockets[0].getsockname()[1], loop=loop,
                      done=asyncio.Event())
        if on_start is not None:
            on_start()
        ready.set()
        await holder["done"].wait()
        server.close()
        if on_stop is not None:
            await on_stop()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait()

    def stop() -> None:
        holder["loop"].call_soon_threadsafe(holder["done"].set)
        thread.join(5)

    return int(holder["port"]), stop


_CLIENT = """
import json, smtplib, sys, threading, time
port, clients, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
messages = [m.encode("latin-1") for m in json.load(open(path))]
chunks = [messages[i::clients] for i in range(clients)]
latencies, lock = [], threading.Lock()
def client(chunk):
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.ehlo("bench.client")
        for raw in chunk:
            smtp.mail("anna.lind@bergstromsbygg.se")
            smtp.rcpt("support@example.se")
            started = time.perf_counter()
            code, _ = smtp.data(raw)
            elapsed = time.perf_counter() - started
            assert code == 250, code
            with lock:
                latencies.append(elapsed)
started = time.perf_counter()
threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"seconds": time.perf_counter() - started, "latencies": latencies}))
"""


def send_all(port: int, messages: list[bytes], clients: int = 4) -> tuple[float, list[float]]:
    """Send every message from a separate client process over `clients` connections.

    Returns (seconds for all, latency of each DATA → reply). The clients run in their own
    process so that they do not compete with the server for this process's GIL.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump([raw.decode("latin-1") for raw in messages], handle)
    try:
        done = subprocess.run([sys.executable, "-c", _CLIENT, str(port), str(clients),
                               handle.name], capture_output=True, text=True, check=True,
                              timeout=600)
    finally:
        os.unlink(handle.name)
    result = json.loads(done.stdout)
    return float(result["seconds"]), [float(value) for value in result["latencies"]]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(kind: str, count: int, workdir: Path) -> dict[str, float]:
    attachment = kind == "attachment"
    config = load_config(env={}, overrides={"data_dir": str(workdir / kind),
                                            "rules_dir": str(ROOT / "rules")})
    runtime = open_runtime(config)
    live = LiveRules(config.rules_dir)

    # (a) aiosmtpd with a null handler
    null_factory: Callable[[], SMTP] = lambda: SMTP(NullHandler(), hostname="bench")  # noqa: E731
    port, stop = serve_in_thread(null_factory)
    null_seconds, null_latencies = send_all(port, [make_message(i, attachment)
                                                   for i in range(count)])
    stop()

    # (f) the durable floor: append and fsync before 250
    floor = DurableFloorHandler(workdir / f"{kind}-floor.mbox")
    port, stop = serve_in_thread(lambda: MaildSMTP(
        floor, hostname="bench", data_size_limit=config.max_message_size,
        enable_SMTPUTF8=True, decode_data=False))
    floor_seconds, _ = send_all(port, [make_message(i, attachment) for i in range(count)])
    stop()
    os.close(floor.fd)

    # A thread of three mails processed first, so that (c) measures a processor whose
    # statements are compiled and code imported, as a running daemon's are
    warm_up(runtime)

    # (b) maild's accept path, as the daemon runs it: DATA → group commit → 250
    committer = GroupCommitter(runtime.engine)
    handler = IntakeHandler(store=committer.store, rules=lambda: live.current, hostname="bench",
                            protocol="smtp")
    port, stop = serve_in_thread(make_server_factory(
        handler, hostname="bench", max_size=config.max_message_size, timeout=300, tls=None),
        on_start=committer.start, on_stop=committer.stop)
    accepted = [make_message(i, attachment) for i in range(count)]
    accept_seconds, accept_latencies = send_all(port, accepted)
    stop()

    # (c) processing everything that was accepted, the rules loaded before the clock
    # starts, as in a running daemon (and as c2 and bench/vs_helpdesk.py load them)
    processor = runtime.processor()
    runtime.rules  # noqa: B018 - loads them
    settle_heap()  # as a set-up daemon, worker or `maild ingest` has (`maild.heap`)
    started = time.perf_counter()
    counts = processor.run_pending()
    process_seconds = time.perf_counter() - started
    assert counts["processed"] == count, counts

    # (c2) the same processing in two processes (`maild ingest --workers 2`), on a fresh
    # database holding the same messages, stored as `maild ingest` stores them
    runtime.engine.dispose()
    twice = open_runtime(load_config(env={}, overrides={
        "data_dir": str(workdir / f"{kind}-2"), "rules_dir": str(ROOT / "rules")}))
    for first in range(0, count, 64):
        store_batch(twice.engine, [Arrival(raw, "smtp", "kund@bench.example",
                                           ["support@example.se"], "bench")
                                   for raw in accepted[first:first + 64]])
    with SideBySide(twice.engine, twice.processor, 2) as side_by_side:
        started = time.perf_counter()
        done = side_by_side.run()
        process2_seconds = time.perf_counter() - started
    assert done.counts["processed"] == count, done
    assert not done.failures, done
    twice.engine.dispose()

    # (d) bare mail-parser on the same bytes
    started = time.perf_counter()
    for raw in accepted:
        mailparser.parse_from_bytes(raw)
    parse_seconds = time.perf_counter() - started

    return {
        "null_per_s": count / null_seconds,
        "floor_per_s": count / floor_seconds,
        "accept_per_s": count / accept_seconds,
        "process_per_s": count / process_seconds,
        "process2_per_s": count / process2_seconds,
        "parse_per_s": count / parse_seconds,
        "p50_null_ms": percentile(null_latencies, 0.5) * 1000,
        "p50_accept_ms": percentile(accept_latencies, 0.5) * 1000,
        "p99_accept_ms": percentile(accept_latencies, 0.99) * 1000,
        "mean_accept_ms": statistics.fmean(accept_latencies) * 1000,
    }


def vs_helpdesk() -> dict[str, float] | None:
    """maild's ingestion rate over django-helpdesk's, by maild's processes (1 and 2;
    bench/vs_helpdesk.py); None if it fails."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "vs_helpdesk.py")],
                          capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0 or not done.stdout.strip():
        print(f"vs_helpdesk: not measured: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    *table, last = done.stdout.rstrip().splitlines()
    print("\n".join(table) + "\n")
    ratios = json.loads(last).get("vs_helpdesk_processes")
    return {key: float(value) for key, value in ratios.items()} if ratios else None


def processes(messages: int) -> dict[str, float] | None:
    """Processing with 1, 2 and 3 worker processes on PostgreSQL (bench/instances.py)."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "instances.py"),
                           "--messages", str(messages), "--accept-messages", "0"],
                          capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0 or not done.stdout.strip():
        print(f"processes: not measured: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    *table, last = done.stdout.rstrip().splitlines()
    print("\n".join(table) + "\n")
    return {key: float(value) for key, value in json.loads(last)["processes"].items()}


# The ratios printed for each round: (name, numerator, denominator).
_RATIOS = (("b/a", "accept_per_s", "null_per_s"), ("b/floor", "accept_per_s", "floor_per_s"),
           ("c/d", "process_per_s", "parse_per_s"), ("c2/d", "process2_per_s", "parse_per_s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=300, help="messages per measurement")
    parser.add_argument("--no-helpdesk", action="store_true",
                        help="skip the comparison with django-helpdesk (vs_helpdesk: null)")
    parser.add_argument("--no-processes", action="store_true",
                        help="skip processing with several processes on PostgreSQL "
                             "(processes: null)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measurements of each kind, the kinds alternated; every figure "
                             "is the median of its rounds (default 3)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    configure_logging("error", "json", once=True)  # as `maild run` does: loggers kept
    rounds: dict[str, list[dict[str, float]]] = {"small": [], "attachment": []}
    with tempfile.TemporaryDirectory() as directory:
        for number in range(args.rounds):
            for kind, measured in rounds.items():
                workdir = Path(directory) / f"round-{number}"
                workdir.mkdir(exist_ok=True)
                measured.append(measure(kind, args.messages, workdir))
    results = {kind: {key: statistics.median_low(each[key] for each in measured)
                      for key in measured[0]} for kind, measured in rounds.items()}
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    helpdesk_ratio = None if args.no_helpdesk else vs_helpdesk()
    by_processes = None if args.no_processes else processes(args.messages * 2)

    print(f"{'':12} {'null SMTP/s':>12} {'floor/s':>8} {'accept/s':>10} {'b/a':>6} "
          f"{'b/floor':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'process/s':>10} {'parse/s':>9} {'c/d':>6} {'2 proc/s':>9} "
          f"{'c2/d':>6}")
    for kind, r in results.items():
        print(f"{kind:12} {r['null_per_s']:12.0f} {r['floor_per_s']:8.0f} "
              f"{r['accept_per_s']:10.0f} "
              f"{r['accept_per_s'] / r['null_per_s']:6.2f} "
              f"{r['accept_per_s'] / r['floor_per_s']:8.2f} {r['p50_accept_ms']:8.2f} "
              f"{r['p99_accept_ms']:8.2f} {r['process_per_s']:10.0f} {r['parse_per_s']:9.0f} "
              f"{r['process_per_s'] / r['parse_per_s']:6.2f} {r['process2_per_s']:9.0f} "
              f"{r['process2_per_s'] / r['parse_per_s']:6.2f}")
    print(f"peak RSS {peak_rss_mb:.0f} MB; {args.messages} messages per measurement, "
          "4 SMTP clients, SQLite (WAL, synchronous=FULL); c: processing in one process, "
          "c2: in two (`maild ingest --workers 2`), d: mail-parser in one")
    print(f"medians of {args.rounds} round(s), each figure's own (a rate and the ratio beside "
          "it may come from different rounds); each round's ratios:")
    for kind, measured in rounds.items():
        print(f"  {kind:10} " + "; ".join(
            f"{name} " + ", ".join(f"{each[over] / each[under]:.2f}" for each in measured)
            for name, over, under in _RATIOS))
    worst = min(results.values(), key=lambda r: r["accept_per_s"] / r["null_per_s"])
    slowest = min(results.values(), key=lambda r: r["process_per_s"] / r["parse_per_s"])
    summary = {
        "accept_vs_null": round(min(r["accept_per_s"] / r["null_per_s"]
                                    for r in results.values()), 3),
        "process_vs_parse": round(min(r["process_per_s"] / r["parse_per_s"]
                                      for r in results.values()), 3),
        "process_2_processes_vs_parse": round(min(r["process2_per_s"] / r["parse_per_s"]
                                                  for r in results.values()), 3),
        "accept_per_s": round(worst["accept_per_s"], 1),
        "process_per_s": round(slowest["process_per_s"], 1),
        "p99_accept_ms": round(max(r["p99_accept_ms"] for r in results.values()), 2),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "accept_vs_floor": round(min(r["accept_per_s"] / r["floor_per_s"]
                                     for r in results.values()), 3),
        "vs_helpdesk": helpdesk_ratio["1"] if helpdesk_ratio else None,
        "vs_helpdesk_processes": helpdesk_ratio,
        "processes": by_processes,
        "by_kind": {kind: {key: round(value, 2) for key, value in r.items()}
                    for kind, r in results.items()},
        "rounds": args.rounds,
        "ratios_by_round": {kind: {name: [round(each[over] / each[under], 3)
                                          for each in measured]
                                   for name, over, under in _RATIOS}
                            for kind, measured in rounds.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
