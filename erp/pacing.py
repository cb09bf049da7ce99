"""Politeness towards one ERP host, shared by every worker on every machine.

An ERP instance is somebody else's server: its contract allows a request rate
(NonSistemas: 10 requests a second per instance) and it is not sized for dozens of
our runs at once. Runs against one host (scheme://host:port of the connection URL;
several stores of one distributor often share an instance) therefore

- take one of `VXM_ERP_HOST_CONCURRENCY` places (a `HostLease` row) for the whole
  run, and
- start each request at a slot claimed from the host's `HostPace` row, spaced
  1 / `VXM_ERP_HOST_RATE` seconds apart across all of them.

Both live in the database because that is the one thing all workers share
(PostgreSQL in production; SQLite in the demo works the same way). A slot is
claimed by a single conditional UPDATE ... RETURNING (the generic cell rate
algorithm: `next_slot = max(next_slot, now) + interval`, and the caller waits until
its slot), a place by a conditional UPDATE of an expired lease row. Times are read
from the database's clock, never from the worker's, so machines whose clocks
disagree still space their requests correctly.

A place is held by renewing it on each request; a holder that dies (SIGKILL, a
lost machine) stops renewing and its place frees itself after
`VXM_ERP_HOST_LEASE_SECONDS`. The price of expiry over a lock held by a
connection (a PostgreSQL advisory lock) is that a live run waiting longer than the
lease on one request (Retry-After and retries) may lose its place to another run
for a while: the cap is then exceeded by one, the rate never is.

Considered: `pyrate-limiter` and `limits` (per-process or Redis buckets; no shared
concurrency cap, and the product must run without Redis), `django-ratelimit`
(limits incoming web requests, not outgoing ones). Two small UPDATEs fit better.

Call it outside any transaction (the engine fetches pages between its page
transactions): a claim inside one would keep the host's row locked until that
transaction ends, and every other run against the host would wait that long.

Waiting (for a place or a slot) is a page boundary: it honours the run's stop
signals (`erp.stopping`), and the database writes are shielded so a signal never
cuts one in half.
"""

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from erp import stopping
from erp.models import HostLease, HostPace

logger = logging.getLogger("erp.pacing")

# How long a waiter sleeps at most before looking at its stop signals again: a
# worker thread is not interrupted by a signal (only the main thread is), so it
# must look. Short enough for a prompt stop, long enough to cost nothing.
STOP_POLL = 0.2
# How often a run waiting for a place tries again (jittered), and calls `on_wait`.
PLACE_POLL = 0.5
ON_WAIT_EVERY = 5.0


class Pacer(Protocol):
    def before_request(self) -> None: ...

    def close(self) -> None: ...


def host_key(url: str) -> str:
    """scheme://host:port, lower case, with the scheme's default port made explicit:
    `HTTPS://Erp.Example:443/ns` and `https://erp.example/api` are one host."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "https").lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if scheme == "https" else 80
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"[:300]


def _now_sql(vendor: str) -> str:
    if vendor == "postgresql":
        return "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
    # julianday('now') has millisecond precision, as much as pacing needs.
    return "((julianday('now') - 2440587.5) * 86400.0)"


def _greatest(vendor: str) -> str:
    return "GREATEST" if vendor == "postgresql" else "MAX"


def interruptible_sleep(seconds: float) -> None:
    """Sleep, but stop (StopRequested) as soon as the process is asked to end."""
    end = time.monotonic() + seconds
    while True:
        stopping.check()
        remaining = end - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, STOP_POLL))


def claim_slot(host: str, interval: float) -> float:
    """Claim the host's next request slot; return how many seconds to wait for it."""
    connection = connections[DEFAULT_DB_ALIAS]
    vendor = connection.vendor
    now = _now_sql(vendor)
    table = connection.ops.quote_name(HostPace._meta.db_table)
    sql = (
        f"UPDATE {table} SET next_slot = {_greatest(vendor)}(next_slot, {now}) + %s "
        f"WHERE host = %s RETURNING next_slot - %s - {now}"
    )
    with stopping.shielded(), connection.cursor() as cursor:
        cursor.execute(sql, [interval, host, interval])
        row = cursor.fetchone()
        if row is None:
            HostPace.objects.bulk_create([HostPace(host=host)], ignore_conflicts=True)
            cursor.execute(sql, [interval, host, interval])
            row = cursor.fetchone()
    return max(0.0, float(row[0]))


def try_place(host: str, capacity: int, holder: str, ttl: float) -> int | None:
    """Take a free (never taken, released or expired) place of the host; its number,
    or None when all `capacity` places are held."""
    connection = connections[DEFAULT_DB_ALIAS]
    vendor = connection.vendor
    now = _now_sql(vendor)
    table = connection.ops.quote_name(HostLease._meta.db_table)
    # SKIP LOCKED: two workers after a place at once each take a different one
    # instead of queueing on the same row. The outer condition is re-checked on
    # the row as updated by a concurrent winner (PostgreSQL re-evaluates it), so
    # a place is never given twice.
    skip = " FOR UPDATE SKIP LOCKED" if vendor == "postgresql" else ""
    sql = (
        f"UPDATE {table} SET holder = %s, expires_at = {now} + %s "
        f"WHERE id = (SELECT id FROM {table} WHERE host = %s AND slot < %s "
        f"AND expires_at < {now} ORDER BY slot LIMIT 1{skip}) "
        f"AND expires_at < {now} RETURNING slot"
    )
    with stopping.shielded():
        if not HostLease.objects.filter(host=host, slot=capacity - 1).exists():
            HostLease.objects.bulk_create(
                [HostLease(host=host, slot=n) for n in range(capacity)], ignore_conflicts=True
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, [holder, ttl, host, capacity])
            row = cursor.fetchone()
    return None if row is None else int(row[0])


def renew_place(host: str, slot: int, holder: str, ttl: float) -> bool:
    """Extend a place still held by `holder`; False when it expired and was taken."""
    connection = connections[DEFAULT_DB_ALIAS]
    now = _now_sql(connection.vendor)
    table = connection.ops.quote_name(HostLease._meta.db_table)
    with stopping.shielded(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET expires_at = {now} + %s "
            "WHERE host = %s AND slot = %s AND holder = %s",
            [ttl, host, slot, holder],
        )
        return cursor.rowcount == 1


def release_place(host: str, slot: int, holder: str) -> None:
    with stopping.shielded():
        HostLease.objects.filter(host=host, slot=slot, holder=holder).update(
            holder="", expires_at=0.0
        )


def places_held(host: str) -> int:
    """How many places of the host are held right now (for tests and the CLI)."""
    connection = connections[DEFAULT_DB_ALIAS]
    now = _now_sql(connection.vendor)
    table = connection.ops.quote_name(HostLease._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {table} WHERE host = %s AND expires_at >= {now}", [host]
        )
        return int(cursor.fetchone()[0])


class HostPacer:
    """The pacing of one client's requests to one host; `run=True` also holds one of
    the host's places from the first request to `close()`.

    Settings (0 turns each off): VXM_ERP_HOST_RATE requests a second,
    VXM_ERP_HOST_CONCURRENCY runs at once, VXM_ERP_HOST_LEASE_SECONDS.
    """

    def __init__(
        self,
        url: str,
        *,
        run: bool,
        on_wait: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = interruptible_sleep,
    ) -> None:
        self.host = host_key(url)
        rate = float(getattr(settings, "VXM_ERP_HOST_RATE", 10.0))
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.capacity = int(getattr(settings, "VXM_ERP_HOST_CONCURRENCY", 4)) if run else 0
        self.ttl = float(getattr(settings, "VXM_ERP_HOST_LEASE_SECONDS", 90.0))
        self.holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.slot: int | None = None
        self._renewed_at = 0.0
        self._on_wait = on_wait
        self._sleep = sleep
        self.waited = 0.0  # seconds spent waiting for a place or a slot

    def before_request(self) -> None:
        # A request about to start is a page boundary (in a worker thread, the
        # only place a stop signal is seen between pages of a long retry).
        stopping.check()
        if self.capacity > 0:
            self._hold_place()
        if self.interval > 0:
            wait = claim_slot(self.host, self.interval)
            if wait > 0:
                self.waited += wait
                self._sleep(wait)

    def _hold_place(self) -> None:
        now = time.monotonic()
        if self.slot is not None:
            if now - self._renewed_at < self.ttl / 3:
                return
            if renew_place(self.host, self.slot, self.holder, self.ttl):
                self._renewed_at = now
                return
            logger.warning(
                "%s: the place #%s lapsed (a long wait); taking one again", self.host, self.slot
            )
            self.slot = None
        started = now
        last_on_wait = now
        while True:
            slot = try_place(self.host, self.capacity, self.holder, self.ttl)
            if slot is not None:
                self.slot = slot
                self._renewed_at = time.monotonic()
                self.waited += self._renewed_at - started
                return
            if self._on_wait is not None and time.monotonic() - last_on_wait >= ON_WAIT_EVERY:
                # A long wait for a place is still the run's life: it beats and
                # learns there whether it was stopped or declared dead.
                self._on_wait()
                last_on_wait = time.monotonic()
            # Jittered: waiters that woke together do not all try again together.
            self._sleep(PLACE_POLL * (0.5 + random.random()))

    def close(self) -> None:
        if self.slot is not None:
            try:
                release_place(self.host, self.slot, self.holder)
            finally:
                self.slot = None
