"""Several maild processes on one PostgreSQL database: how processing and SMTP accept scale.

Processing: the same pre-stored messages in a PostgreSQL database created fresh
for each run, worked through by 1, 2 and 3 worker processes (each a Processor's
`run_pending` in its own OS process, started together); the figure is messages
per second from the start signal until the last worker has processed its last
message. SMTP accept: 1 and 2 accept servers (maild's accept path as `maild run`
serves it: DATA → group commit → 250), each its own process on one database,
fed by a client process whose connections are spread over the servers.

Prints a table and, as its last line, one JSON object with "processes"
({"1": ..., "2": ..., "3": ...} messages/s) and "accept_instances" ({"1": ...,
"2": ...} messages/s). Usage: python bench/instances.py [--messages N]
[--accept-messages N] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maild.config import load_config  # noqa: E402
from maild.intake import Arrival, store_batch  # noqa: E402
from maild.log import configure_logging  # noqa: E402
from maild.runtime import open_runtime  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MAILD_LOG_LEVEL": "error"}

_WORKER = """
import sys, time
from pathlib import Path
from maild.config import load_config
from maild.log import configure_logging
from maild.runtime import open_runtime

configure_logging("error", "json")
url, data, rules, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
config = load_config(env={}, overrides={"data_dir": data, "rules_dir": rules,
                                        "database_url": url})
runtime = open_runtime(config)
processor = runtime.processor()
# Warm up (rules, parser, the pipeline's lazy imports) on a dry run, so that the clock
# measures processing, not start-up.
from maild.parse import parse_mail
from maild.envelope import identity_of, Envelope
from maild.pipeline import decide
from maild.models import utcnow
from maild.tickets.correlate import NoTickets
rules = processor.rules()
sample = (b"From: Kund <kund@warm.example>\\r\\nTo: support@example.se\\r\\n"
          b"Subject: Prov\\r\\nMessage-ID: <warm@warm.example>\\r\\n\\r\\nHej!\\r\\n")
decide(parse_mail(sample), Envelope(sender="kund@warm.example",
       recipients=("support@example.se",), received_at=utcnow(), transport="smtp"),
       rules, lookup=NoTickets(), numbering=processor.numbering,
       identity=identity_of(rules, None))
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
total = 0
while True:
    counts = processor.run_pending()
    if not counts:
        break
    total += counts["processed"]
print(total, time.time(), flush=True)
"""

_SERVER = """
import asyncio, sys
from maild.config import load_config
from maild.group_commit import GroupCommitter
from maild.log import configure_logging
from maild.routing.reload import LiveRules
from maild.runtime import open_runtime
from maild.transports.smtp import IntakeHandler, make_server_factory

configure_logging("error", "json")
url, data, rules = sys.argv[1], sys.argv[2], sys.argv[3]
config = load_config(env={}, overrides={"data_dir": data, "rules_dir": rules,
                                        "database_url": url})
runtime = open_runtime(config)
live = LiveRules(config.rules_dir)

async def main():
    committer = GroupCommitter(runtime.engine)
    committer.start()
    handler = IntakeHandler(store=committer.store, rules=lambda: live.current,
                            hostname="bench", protocol="smtp")
    server = await asyncio.get_running_loop().create_server(make_server_factory(
        handler, hostname="bench", max_size=config.max_message_size, timeout=300, tls=None),
        "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

_CLIENT = """
import json, smtplib, sys, threading, time
ports, per_port, path = [int(p) for p in sys.argv[1].split(",")], int(sys.argv[2]), sys.argv[3]
messages = [m.encode("latin-1") for m in json.load(open(path))]
targets = [port for port in ports for _ in range(per_port)]
chunks = [messages[i::len(targets)] for i in range(len(targets))]
def client(port, chunk):
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.ehlo("bench.client")
        for raw in chunk:
            smtp.mail("kund@bench.example")
            smtp.rcpt("support@example.se")
            code, _ = smtp.data(raw)
            assert code == 250, code
started = time.perf_counter()
threads = [threading.Thread(target=client, args=pair) for pair in zip(targets, chunks)]
[t.start() for t in threads]
[t.join() for t in threads]
print(time.perf_counter() - started)
"""


def make_message(index: int) -> bytes:
    """A support mail from one of 50 senders at 25 domains, each text its own."""
    message = EmailMessage()
    message["From"] = f"Kund {index % 50} <kund{index % 50}@foretag{index % 25}.example>"
    message["To"] = "support@example.se"
    message["Subject"] = f"Fakturan stämmer inte ({index})"
    message["Message-ID"] = f"<instances-{index}-{time.time_ns()}@bench.example>"
    message["Date"] = "Mon, 16 Nov 2026 10:12:00 +0100"
    message.set_content(f"Hej!\n\nFaktura {index} har fel belopp sedan i morse. Kan ni "
                        "titta på det?\n\nMed vänliga hälsningar\nKund\n")
    return message.as_bytes(policy=SMTP_POLICY)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new PostgreSQL database for one measurement (its SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"maild_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _config_args(url: str, workdir: Path) -> list[str]:
    return [url, str(workdir), str(ROOT / "rules")]


def measure_processing(admin_url: str, workers: int, count: int, workdir: Path) -> float:
    """Messages per second processed by `workers` processes from the start signal to the end."""
    with fresh_database(admin_url) as url:
        config = load_config(env={}, overrides={"data_dir": str(workdir),
                                                "rules_dir": str(ROOT / "rules"),
                                                "database_url": url})
        runtime = open_runtime(config)
        messages = [make_message(index) for index in range(count)]
        for start in range(0, count, 64):
            store_batch(runtime.engine, [Arrival(raw, "smtp", "kund@bench.example",
                                                 ["support@example.se"], "bench")
                                         for raw in messages[start:start + 64]])
        runtime.engine.dispose()
        go = workdir / f"go-{workers}"
        procs = [subprocess.Popen([sys.executable, "-c", _WORKER, *_config_args(url, workdir),
                                   str(go)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                  text=True) for _ in range(workers)]
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        started = time.time()
        go.touch()
        finished, processed = started, 0
        for proc in procs:
            out, _ = proc.communicate(timeout=1800)
            assert proc.returncode == 0, f"a worker failed ({proc.returncode})"
            done, at = out.split()
            processed += int(done)
            finished = max(finished, float(at))
        assert processed == count, f"processed {processed} of {count}"
        return count / (finished - started)


def measure_accept(admin_url: str, instances: int, count: int, workdir: Path,
                   per_instance: int = 4) -> float:
    """Messages per second accepted by `instances` accept servers on one database."""
    with fresh_database(admin_url) as url:
        open_runtime(load_config(env={}, overrides={
            "data_dir": str(workdir), "rules_dir": str(ROOT / "rules"),
            "database_url": url})).engine.dispose()
        servers = [subprocess.Popen([sys.executable, "-c", _SERVER, *_config_args(url, workdir)],
                                    cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
                   for _ in range(instances)]
        try:
            ports = []
            for server in servers:
                assert server.stdout is not None
                ports.append(server.stdout.readline().strip())
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
                json.dump([make_message(index).decode("latin-1") for index in range(count)],
                          handle)
            try:
                done = subprocess.run([sys.executable, "-c", _CLIENT, ",".join(ports),
                                       str(per_instance), handle.name], capture_output=True,
                                      text=True, check=True, timeout=1800)
            finally:
                os.unlink(handle.name)
            return count / float(done.stdout.strip())
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
                server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=600, help="messages to process")
    parser.add_argument("--accept-messages", type=int, default=1000,
                        help="messages to send over SMTP (0: no accept measurement)")
    parser.add_argument("--admin-url", default=os.environ.get(
        "MAILD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL database to create the bench databases from")
    args = parser.parse_args()
    configure_logging("error", "json")
    processes: dict[str, float] = {}
    accept: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        for workers in (1, 2, 3):
            processes[str(workers)] = measure_processing(args.admin_url, workers,
                                                         args.messages, workdir)
        for instances in (1, 2) if args.accept_messages else ():
            accept[str(instances)] = measure_accept(args.admin_url, instances,
                                                    args.accept_messages, workdir)
    cores = os.cpu_count() or 1
    print(f"{'':28} {'messages/s':>10} {'vs 1':>6}")
    for name, rate in processes.items():
        print(f"processing, {name} worker process(es) {rate:10.1f} {rate / processes['1']:6.2f}")
    for name, rate in accept.items():
        print(f"SMTP accept, {name} instance(s)    {rate:10.1f} {rate / accept['1']:6.2f}")
    print(f"{args.messages} messages processed, {args.accept_messages} sent over SMTP "
          f"(4 connections per instance); PostgreSQL; {cores} CPU cores")
    print(json.dumps({"processes": {key: round(value, 1) for key, value in processes.items()},
                      "accept_instances": {key: round(value, 1) for key, value in accept.items()},
                      "messages": args.messages, "accept_messages": args.accept_messages,
                      "cpu_cores": cores}))


if __name__ == "__main__":
    main()
