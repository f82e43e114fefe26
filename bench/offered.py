"""Accept latency at an offered rate, with the daemon accepting and processing at once.

Starts `maild run` (SQLite, the shipped rules, a Maildir outbox) on a free loopback
port and sends it small support mails at a fixed offered rate (default 200 a second)
from 4 SMTP connections in a client process, each mail at its scheduled moment. It
measures each mail's time from MAIL FROM to the reply to its DATA, so the figure is
what a sending MTA waits while the daemon also parses, routes and makes tickets of
what came before (processing shares the database and the process). It prints p50,
p99 and the largest latency, the rate actually achieved, how long after the last
250 processing had made a ticket of every mail, the daemon's RSS once it listens (before
any mail: what start-up and imports cost) and the peak RSS of the daemon (and of its
worker processes); the last line is one JSON object.
With --workers N the daemon processes in N worker processes (`processing.workers`).
With --against null or --against floor the same client offers the same mail to
bench/run.py's null handler or its durable floor instead, served alone in a process
of their own: what this client and machine measure when the server does nothing, or
only appends and fsyncs.
The daemon starts on a database whose schema is already current, as on any restart;
with --fresh it starts on an empty data directory and migrates the schema itself.
Usage: python bench/offered.py [--rate 200] [--seconds 15] [--workers N] [--fresh]
                               [--against maild|null|floor]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CLIENT = """
import json, smtplib, sys, threading, time
port, rate, seconds, clients = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), 4
body = ("From: Anna Lind <anna.lind@bergstromsbygg.se>\\r\\nTo: support@example.se\\r\\n"
        "Subject: Bokningssidan visar fel pris ({n})\\r\\n"
        "Message-ID: <offered-{n}-{stamp}@bergstromsbygg.se>\\r\\n"
        "Date: Mon, 16 Nov 2026 10:12:00 +0100\\r\\n\\r\\n"
        "Hej!\\r\\n\\r\\nNar vi bokar ett rum visas fel pris i kassan (fel {n}).\\r\\n"
        "Chrome 131 pa Windows 11.\\r\\n\\r\\nAnna Lind\\r\\n")
total = int(rate * seconds)
latencies, lock, late = [], threading.Lock(), [0]
start = time.perf_counter() + 0.5
stamp = time.time_ns()
def client(index):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("bench.client")
        for n in range(index, total, clients):
            due = start + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            elif pause < -0.05:
                late[0] += 1
            began = time.perf_counter()
            smtp.mail("anna.lind@bergstromsbygg.se")
            smtp.rcpt("support@example.se")
            code, _ = smtp.data(body.format(n=n, stamp=stamp).encode())
            assert code == 250, code
            with lock:
                latencies.append(time.perf_counter() - began)
threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"seconds": time.perf_counter() - start, "latencies": latencies,
                  "late": late[0]}))
"""


# bench/run.py's null handler or durable floor, served alone on a given port until SIGTERM:
# as there, the null handler on aiosmtpd's server and the floor on maild's.
_BASELINE_SERVER = """
import asyncio, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from aiosmtpd.smtp import SMTP
from run import DurableFloorHandler, NullHandler
from maild.transports.smtp import MaildSMTP
kind, port, directory = sys.argv[1], int(sys.argv[2]), Path(sys.argv[4])
handler = NullHandler() if kind == "null" else DurableFloorHandler(directory / "floor.mbox")
server_class = SMTP if kind == "null" else MaildSMTP
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: server_class(handler), "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int, field: str = "VmHWM") -> float | None:
    """Figure `field` of process `pid` in MB (VmHWM: peak RSS, VmRSS: now); None if unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=200.0, help="mails offered per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to offer them")
    parser.add_argument("--workers", type=int, default=0,
                        help="processing.workers: 0 processes in the daemon, N in N processes")
    parser.add_argument("--fresh", action="store_true",
                        help="start the daemon on an empty data directory (it migrates first)")
    parser.add_argument("--against", choices=("maild", "null", "floor"), default="maild",
                        help="offer the mail to maild run (default), or to bench/run.py's null "
                             "handler or durable floor, for the same client's baseline")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        env = {key: value for key, value in os.environ.items() if not key.startswith("MAILD_")}
        env.update({"MAILD_DATA_DIR": str(work / "var"), "MAILD_RULES_DIR": str(ROOT / "rules"),
                    "MAILD_SMTP_LISTEN": f"127.0.0.1:{port}", "MAILD_LOG_LEVEL": "error",
                    "MAILD_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT),
                    "MAILD_PROCESSING_WORKERS": str(args.workers)})
        database = work / "var" / "maild.db"
        if args.against != "maild":
            command = [sys.executable, "-c", _BASELINE_SERVER, args.against, str(port),
                       str(ROOT / "bench"), str(work)]
        else:
            command = [sys.executable, "-m", "maild.cli", "run"]
        if not args.fresh and args.against == "maild":
            subprocess.run([sys.executable, "-c", "import sys; from maild.db import open_database; "
                            "open_database(sys.argv[1]).dispose()", f"sqlite:///{database}"],
                           env=env, check=True)
        daemon = subprocess.Popen(command, cwd=work, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: {daemon.stderr.read()[-2000:]!r}"
                                     if daemon.stderr else "the server did not start")
                time.sleep(0.05)
            time.sleep(1.0)  # start-up finishes its first (empty) passes
            ready_mb = _rss_mb(daemon.pid, "VmRSS")
            done = subprocess.run([sys.executable, "-c", _CLIENT, str(port), str(args.rate),
                                   str(args.seconds)], capture_output=True, text=True,
                                  check=True, timeout=args.seconds * 20 + 120)
            last_reply = time.monotonic()
            result = json.loads(done.stdout)
            sent = len(result["latencies"])
            caught_up: float | None = None
            while args.against == "maild" and time.monotonic() - last_reply < 300:
                with sqlite3.connect(database, timeout=10) as connection:
                    waiting = connection.execute(
                        "SELECT count(*) FROM inbound WHERE state != 'processed'").fetchone()[0]
                if waiting == 0:
                    caught_up = time.monotonic() - last_reply
                    break
                time.sleep(0.1)
            peak_mb = {str(pid): _rss_mb(pid) for pid in [daemon.pid, *_children(daemon.pid)]}
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
    latencies = result["latencies"]
    summary = {
        "against": args.against,
        "offered_per_s": args.rate,
        "workers": args.workers,
        "fresh_database": args.fresh,
        "achieved_per_s": round(sent / result["seconds"], 1),
        "messages": sent,
        "late_sends": result["late"],
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "processed_all_within_s": None if caught_up is None else round(caught_up, 1),
        "rss_ready_mb": ready_mb,
        "peak_rss_mb": peak_mb,
    }
    print(f"offered {args.rate:.0f}/s to {args.against} for {args.seconds:.0f} s "
          "over 4 connections: "
          f"achieved {summary['achieved_per_s']}/s, {result['late']} sends late by > 50 ms")
    print(f"accept latency (MAIL FROM → reply to DATA): p50 {summary['p50_ms']} ms, "
          f"p99 {summary['p99_ms']} ms, max {summary['max_ms']} ms")
    if args.against == "maild":
        print("every mail processed "
              + (f"{caught_up:.1f} s after the last 250" if caught_up is not None
                 else "NOT within 300 s of the last 250"))
    print(f"RSS of the daemon once listening, before any mail: {ready_mb} MB")
    print("peak RSS (MB) of the daemon and its worker processes: "
          + ", ".join(f"{pid}: {mb}" for pid, mb in peak_mb.items()))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
