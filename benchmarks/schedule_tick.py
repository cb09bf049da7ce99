"""Benchmark: the scheduler's tick with thousands of scheduled stores.

    .venv/bin/python benchmarks/schedule_tick.py [--stores 5000] [--database-url URL]

Migrates a new SQLite database in a temporary directory (or uses the empty
PostgreSQL database given, which it migrates), creates the stores, their
connections and a schedule every 15 minutes for each, then times:

- a tick that finds nothing due (what most minutes cost);
- the ticks that request the due stores' updates, TICK_BATCH (500) at a time
  (claim + Run + audit row per store; the tasks go to a dummy backend, so no
  update runs);
- how the stores' slots spread over the quarter hour (stores per minute).

Prints figures; asserts nothing.
"""

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=5000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vxm-bench-schedule-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vxm.settings"
    os.environ["VXM_TASK_BACKEND"] = "django.tasks.backends.dummy.DummyBackend"
    os.environ.setdefault("VXM_LOG_LEVEL", "WARNING")
    from cryptography.fernet import Fernet

    os.environ["VXM_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)

    # Imported only now: they need Django set up on the benchmark's database.
    from erp.models import Connection, ErpKind, Schedule, ScheduleKind
    from erp.schedule import TICK_BATCH, enqueue_due_updates, next_regular_run
    from stores.models import Store

    started = time.perf_counter()
    stores = Store.objects.bulk_create(
        [Store(name=f"Distribuidora Nº {i}", slug=f"tienda-{i}") for i in range(args.stores)]
    )
    template = Connection(kind=ErpKind.NONSISTEMAS, url="https://erp.example.com", username="api")
    template.set_password("clave")
    Connection.objects.bulk_create(
        [
            Connection(
                store=store,
                kind=template.kind,
                url=template.url,
                username=template.username,
                password_encrypted=template.password_encrypted,
            )
            for store in stores
        ]
    )
    now = timezone.now()
    schedules = [
        Schedule(store=store, kind=ScheduleKind.EVERY, every_minutes=15) for store in stores
    ]
    for schedule in schedules:
        schedule.next_run_at = next_regular_run(schedule, now)
    Schedule.objects.bulk_create(schedules)
    print(
        f"{connection.vendor}: {args.stores:,} stores scheduled every 15 min "
        f"in {time.perf_counter() - started:.1f} s"
    )

    per_minute = Counter(
        int((s.next_run_at - now).total_seconds() // 60) for s in schedules if s.next_run_at
    )
    print(
        "stores due per minute over the next quarter hour: "
        f"min {min(per_minute.values())}, max {max(per_minute.values())}, "
        f"mean {args.stores / len(per_minute):.0f}"
    )

    idle_at = now - timedelta(minutes=1)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        assert enqueue_due_updates(now=idle_at).requested == []
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"idle tick (nothing due): median {times[len(times) // 2] * 1000:.1f} ms")

    # Everything due at once (after downtime): ticks of TICK_BATCH until none is left.
    later = now + timedelta(hours=3)
    requested = 0
    ticks = 0
    t0 = time.perf_counter()
    while True:
        tick_started = time.perf_counter()
        result = enqueue_due_updates(now=later)
        if not result.requested:
            break
        ticks += 1
        requested += len(result.requested)
        if ticks == 1:
            first = time.perf_counter() - tick_started
    total = time.perf_counter() - t0
    print(
        f"catch-up after 3 h down: {requested:,} runs requested (one per store) in {ticks} "
        f"ticks of ≤{TICK_BATCH}; first tick {first:.2f} s "
        f"({first / min(TICK_BATCH, requested) * 1000:.2f} ms a store), all {total:.1f} s"
    )


if __name__ == "__main__":
    main()
