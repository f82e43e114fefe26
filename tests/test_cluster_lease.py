"""Named leases: one holder at a time, taken over after expiry, released on a clean stop."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from maild.cluster.lease import NamedLease
from maild.runtime import Runtime

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def test_one_holder_at_a_time_and_takeover_after_expiry(runtime: Runtime) -> None:
    clock = Clock()
    first = NamedLease(runtime.engine, "imap a/INBOX", "host-1:1", timedelta(seconds=10), clock)
    second = NamedLease(runtime.engine, "imap a/INBOX", "host-2:2", timedelta(seconds=10), clock)
    other = NamedLease(runtime.engine, "imap b/INBOX", "host-2:2", timedelta(seconds=10), clock)
    assert first.acquire()
    assert not second.acquire(), "held by the first"
    assert other.acquire(), "another folder's lease is independent"
    clock.now += timedelta(seconds=8)
    assert first.acquire(), "the holder renews"
    clock.now += timedelta(seconds=8)
    assert not second.acquire(), "renewed: 2 s left"
    assert second.current_holder() == "host-1:1"
    clock.now += timedelta(seconds=3)
    assert not first.holds()
    assert second.acquire(), "expired: taken over"
    assert not first.acquire(), "the old holder lost it"
    second.release()
    assert second.current_holder() is None
    assert first.acquire(), "released: taken at once"


def test_racing_first_holders_get_one_lease(runtime: Runtime) -> None:
    leases = [NamedLease(runtime.engine, "imap race/INBOX", f"host:{n}") for n in range(8)]
    results: list[bool] = []
    barrier = threading.Barrier(len(leases))

    def take(lease: NamedLease) -> None:
        barrier.wait()
        results.append(lease.acquire())

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
