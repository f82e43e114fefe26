"""Memory per MB of message: the peak RSS that processing one large mail adds, per MB of it.

For each size (a mail whose attachment makes it that large) a fresh Python
process stores the mail in its own SQLite database, then processes it as the
worker does (parse, classify, route, ticket, acknowledgement and team copy
composed and queued), and reports how far its peak RSS (VmHWM, reset just
before) rose above its RSS while processing, and the same for storing it (the
message's own bytes, made before, not counted). Linux only.
The process sets malloc up as maild's commands do (`maild.allocator`: with glibc,
blocks of 1 MiB and more go back to the system when freed). Memory that storing
the mail had freed, and malloc kept, is reused for free, as much as happens to fit,
so the figure can vary with the order of allocations. So each size is measured
a second time with malloc giving every block of 128 KiB and more back at once
(MALLOC_MMAP_THRESHOLD_=128 KiB): that peak is what the copies of the message that
are alive at the same moment add up to ("live").
Prints one line per size, and as its last line one JSON object.
Usage: python bench/memory.py [--sizes 1,5,10,25]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_message(megabytes: float) -> bytes:
    """A support mail from a customer whose attachment makes it about `megabytes` MB."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = "Anna Lind <anna.lind@bergstromsbygg.se>"
    message["To"] = "support@example.se"
    message["Subject"] = "Loggfiler från driftstoppet"
    message["Message-ID"] = f"<memory-{megabytes}@bergstromsbygg.se>"
    message.set_content("Hej!\n\nHär är loggarna från driftstoppet i morse.\n\nAnna\n")
    payload = os.urandom(int(megabytes * 1_048_576 * 3 / 4))  # base64 grows it by 4/3
    message.add_attachment(payload, maintype="application", subtype="octet-stream",
                           filename="loggar.bin")
    return message.as_bytes()


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Start the peak RSS (VmHWM) afresh from the current RSS (Linux 4.0 and later)."""
    Path("/proc/self/clear_refs").write_text("5")


def measure_one(megabytes: float) -> dict[str, float]:
    """In this process: the RSS that processing one mail of `megabytes` MB adds at its peak."""
    from maild.allocator import return_large_blocks
    from maild.config import load_config
    from maild.intake import store_inbound
    from maild.log import configure_logging
    from maild.runtime import open_runtime

    return_large_blocks()  # as `maild run` and its worker processes do when they start
    configure_logging("warning", "json")
    with tempfile.TemporaryDirectory() as work:
        config = load_config(env={}, overrides={"data_dir": work,
                                                "rules_dir": str(ROOT / "rules")})
        runtime = open_runtime(config)
        # Warm up every code path on a small mail first, so imports and caches do not count.
        small = store_inbound(runtime.engine, make_message(0.01), transport="file")
        raw = make_message(megabytes)
        size = len(raw)
        gc.collect()
        store_before = _status_kib("VmRSS")
        _reset_peak()
        stored = store_inbound(runtime.engine, raw, transport="file")
        stored_peak = _status_kib("VmHWM")
        del raw
        processor = runtime.processor()
        processor.process_now(small.inbound_id)
        gc.collect()
        before = _status_kib("VmRSS")
        _reset_peak()
        outcome = processor.process_now(stored.inbound_id)
        after = _status_kib("VmHWM")
        assert outcome is not None
        assert outcome.state == "processed", outcome
        runtime.engine.dispose()
    added_mb = max(after - before, 0) / 1024
    store_mb = max(stored_peak - store_before, 0) / 1024
    size_mb = size / 1_048_576
    return {"message_mb": round(size_mb, 2), "rss_added_mb": round(added_mb, 1),
            "mb_per_message_mb": round(added_mb / size_mb, 2),
            "store_rss_added_mb": round(store_mb, 1),
            "store_mb_per_message_mb": round(store_mb / size_mb, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1,5,10,25", help="message sizes in MB, comma-separated")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)  # run inside the child
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(args.one)))
        return
    results = []
    for size in (float(text) for text in args.sizes.split(",")):
        result = _run_one(size, {})
        live = _run_one(size, {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)})
        result["live_rss_added_mb"] = live["rss_added_mb"]
        result["live_mb_per_message_mb"] = live["mb_per_message_mb"]
        result["live_store_mb_per_message_mb"] = live["store_mb_per_message_mb"]
        results.append(result)
        print(f"{result['message_mb']:6.1f} MB mail: peak RSS +{result['rss_added_mb']:7.1f} MB "
              f"while processing = {result['mb_per_message_mb']:.2f} MB per MB of message "
              f"(live copies: +{live['rss_added_mb']:.1f} MB = "
              f"{live['mb_per_message_mb']:.2f} per MB); storing it: "
              f"+{result['store_rss_added_mb']:.1f} MB = {result['store_mb_per_message_mb']:.2f} "
              f"per MB (live {live['store_mb_per_message_mb']:.2f})")
    print(json.dumps({"memory_per_message_mb": results}))


def _run_one(megabytes: float, env: dict[str, str]) -> dict[str, float]:
    """`measure_one` in a fresh process with `env` added to the environment."""
    done = subprocess.run([sys.executable, __file__, "--one", str(megabytes)], check=True,
                          capture_output=True, text=True, env={**os.environ, **env})
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
