"""A processing claim is renewed while its process lives, and free one lease after a SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

from maild.cluster.heartbeat import ClaimHeartbeat
from maild.intake import store_inbound
from maild.runtime import Runtime
from tests.conftest import ROOT, make_config
from tests.mailmaker import support_mail

LEASE = 2.0

_HOLDER = textwrap.dedent("""
    import sys, time
    from datetime import timedelta
    from maild.cluster.heartbeat import ClaimHeartbeat
    from maild.db import open_database
    from maild.processing import Processor
    from maild.routing.model import Rules
    from maild.tickets.numbering import TicketNumbering

    engine = open_database(sys.argv[1])
    lease = timedelta(seconds=float(sys.argv[2]))
    processor = Processor(engine=engine, rules=lambda: Rules.__new__(Rules),
                          numbering=TicketNumbering("T"), lease=lease,
                          heartbeat=ClaimHeartbeat(engine, lease))
    print(len(processor.claim_batch(size=32)), flush=True)
    time.sleep(300)  # a slow pipeline: the claims must stay held meanwhile
""")


def test_claims_of_a_living_process_are_renewed_and_free_one_lease_after_its_kill(
        runtime: Runtime) -> None:
    for index in range(3):
        store_inbound(runtime.engine, support_mail(message_id=f"<lease-{index}@example.se>"),
                      transport="smtp")
    url = runtime.engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url, str(LEASE)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    other = runtime.processor()
    other.lease = timedelta(seconds=LEASE)
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        assert line == b"3", (holder.kill(), holder.communicate()[1].decode()[-2000:])
        time.sleep(LEASE * 2.5)  # the original lease has long run out: only renewals hold it
        assert other.claim_batch(size=32) == [], "a living holder's claim was taken"
    finally:
        holder.kill()
        holder.wait()
    killed = time.monotonic()
    claimed: list[int] = []
    while not claimed and time.monotonic() - killed < LEASE * 5:
        claimed = other.claim_batch(size=32)
        time.sleep(0.05)
    waited = time.monotonic() - killed
    # Tried once already, the dead holder's messages are taken over one at a time.
    while len(claimed) < 3 and (more := other.claim_batch(size=32)):
        claimed += more
    assert len(claimed) == 3
    assert waited <= LEASE + 1.0, f"taken over {waited:.1f} s after the kill"


def test_the_heartbeat_renews_only_what_is_held_and_stops_with_nothing_held(
        runtime: Runtime) -> None:
    stored = [store_inbound(runtime.engine, support_mail(message_id=f"<hb-{index}@example.se>"),
                            transport="smtp").inbound_id for index in range(2)]
    heartbeat = ClaimHeartbeat(runtime.engine, timedelta(seconds=0.3))
    processor = runtime.processor()
    processor.heartbeat = heartbeat
    processor.lease = timedelta(seconds=0.3)
    assert sorted(processor.claim_batch(size=32)) == sorted(stored)
    assert heartbeat.held() == frozenset(stored)
    processor.release(stored[1:])
    assert heartbeat.held() == frozenset(stored[:1])
    assert heartbeat.renew() == 1  # the released one is received again: nothing to renew
    processor.process(stored[0])
    assert heartbeat.held() == frozenset()
    time.sleep(0.5)
    assert heartbeat._thread is None, "the thread ends once nothing is held"


def test_the_default_processing_lease_is_thirty_seconds(tmp_path: Path) -> None:
    assert make_config(tmp_path).lease_seconds == 30
