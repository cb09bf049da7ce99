"""Benchmark: many stores, many workers (issue 10).

S stores of M items each, every one with its own NonSistemas stand-in (its own
port: its own host, as each store's ERP is in real life), on PostgreSQL. W worker
processes (`vxm erp worker --threads T`, default queue) take R rounds of
incremental updates (each after `--changed` of every store's items changed in its
ERP). Optionally one more store of `--big` items runs a full update meanwhile,
served by a worker of its own on the full queue.

Prints incremental store-updates per minute, run-time and queue-wait percentiles,
failures, and (with --big) the small stores' queue wait while the big update ran.

    .venv/bin/python benchmarks/platform_scale.py [--stores 40] [--items 500]
        [--rounds 3] [--workers 2] [--threads 8] [--latency 0.1] [--big 300000]
        [--database-url postgres://postgres@127.0.0.1:5432/wt_d_bench]

The issue's sizes: --stores 200 --items 2000 --changed 0.01 (--latency 0.1).
The database named by --database-url is dropped and created again.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This file is named as the issue asks, which is also a standard module's name:
# its folder must not come first on the path, or `import platform` finds it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

OLD = "2026-01-01T00:00:00-03:00"  # when the stand-ins' items last changed


def recreate(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name}: p50 {pct(values, 0.5):.2f} s, p90 {pct(values, 0.9):.2f} s, "
        f"p99 {pct(values, 0.99):.2f} s, max {max(values, default=float('nan')):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", type=int, default=40)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per ERP answer")
    parser.add_argument("--big", type=int, default=0, help="items of a concurrent full update")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/wt_d_bench")
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    recreate(args.database_url)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "VXM_ALLOW_LOCAL_ERP": "1",
        "VXM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VXM_LOG_LEVEL": "ERROR",
    }
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vxm.settings")
    vxm = [sys.executable, "-m", "vxm"]
    subprocess.run([*vxm, "migrate", "-v", "0"], env=env, check=True)

    import django

    django.setup()
    from catalog.models import Item, sku_key
    from erp.engine import request_update
    from erp.models import Connection, ErpKind, Run
    from nonsistemas_standin import Fault, Standin
    from nonsistemas_standin.generation import generated_items
    from stores.models import Store

    user, password = "api-ventas", "s3cret-api"
    no_login_limit = {"login_limit_per_minute": None}
    standins: list[Any] = []
    stores: list[Any] = []
    changed = max(1, round(args.items * args.changed))
    started = time.monotonic()
    for s in range(args.stores):
        standin = Standin.start(user=user, password=password, settings=no_login_limit)
        if args.latency:
            standin.inject(Fault("delay", path="*", delay=args.latency, times=10**9))
        codes = [f"ACÉ-{s:03d}#{i:05d}" for i in range(args.items)]
        standin.load(
            [
                {"codigo": c, "stock": "5.000", "precio_mayorista": "1000.50", "modificado": OLD}
                for c in codes
            ]
        )
        store = Store.objects.create(name=f"Distribuidora Nº{s}", slug=f"tienda-{s}")
        Item.objects.bulk_create(
            [
                Item(
                    store=store,
                    sku=f" acé-{s:03d}#{i:05d}",
                    sku_key=sku_key(f" acé-{s:03d}#{i:05d}"),
                    name=f"Yerba mate {i}",
                    stock=5,
                    wholesale_price=Decimal("1000.50"),
                )
                for i in range(args.items)
            ]
        )
        connection = Connection(
            store=store,
            kind=ErpKind.NONSISTEMAS,
            url=standin.url,
            username=user,
            watermark=datetime(2026, 6, 1, tzinfo=UTC),
        )
        connection.set_password(password)
        connection.save()
        standins.append((standin, codes))
        stores.append(store)
    big_store = None
    if args.big:
        big_standin = Standin.start(user=user, password=password, settings=no_login_limit)
        big_standin.generate(args.big)
        big_store = Store.objects.create(name="Mayorista Grande", slug="grande")
        rows = generated_items(args.big, 1)
        for start in range(0, len(rows), 20_000):
            Item.objects.bulk_create(
                [
                    Item(
                        store=big_store,
                        sku=r["codigo"],
                        sku_key=sku_key(r["codigo"]),
                        name="Artículo",
                        stock=0,
                        wholesale_price=Decimal("1.00"),
                    )
                    for r in rows[start : start + 20_000]
                ]
            )
        connection = Connection(
            store=big_store, kind=ErpKind.NONSISTEMAS, url=big_standin.url, username=user
        )
        connection.set_password(password)
        connection.save()
    print(f"setup: {time.monotonic() - started:.1f} s", flush=True)

    workers = [
        subprocess.Popen(
            [*vxm, "erp", "worker", "--threads", str(args.threads), "--interval", "0.2"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(args.workers)
    ]
    if big_store is not None:
        workers.append(
            subprocess.Popen(
                [*vxm, "erp", "worker", "--threads", "1", "--queue-name", "full"],
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
    time.sleep(3)  # the workers' start (imports, first connection); not measured
    cpu_before = sum(cpu_seconds(w.pid) for w in workers[: args.workers])

    big_run = None
    if big_store is not None:
        big_run = request_update(big_store, full=True, origin="cli")
        while not Run.objects.filter(pk=big_run.pk, pages__gte=1).exists():
            time.sleep(0.2)
    runs: list[int] = []
    load_start = time.monotonic()
    try:
        for r in range(args.rounds):
            for standin, codes in standins:
                first = (r * changed) % args.items
                standin.edit(
                    [
                        {"codigo": codes[(first + k) % args.items], "stock": str(10 + r)}
                        for k in range(changed)
                    ]
                )
            for store in stores:
                while True:
                    try:
                        runs.append(request_update(store, origin="cli").pk)
                        break
                    except Exception:  # the store's previous round still runs
                        time.sleep(0.05)
        while Run.objects.filter(pk__in=runs, finished_at__isnull=True).exists():
            time.sleep(0.2)
        elapsed = time.monotonic() - load_start
        # The small stores' workers only (the full-queue one is last, if any).
        worker_cpu = sum(cpu_seconds(w.pid) for w in workers[: args.workers]) - cpu_before
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=120)

    done = list(Run.objects.filter(pk__in=runs))
    ok = [r for r in done if r.status in ("succeeded", "warnings")]
    waits = [(r.started_at - r.created_at).total_seconds() for r in done if r.started_at]
    times = [
        (r.finished_at - r.started_at).total_seconds()
        for r in done
        if r.started_at and r.finished_at
    ]
    finished = [r.finished_at for r in done if r.finished_at is not None]
    span = (max(finished) - min(r.created_at for r in done)).total_seconds()
    print(
        f"stores {args.stores} x {args.items} items, {changed} changed a round, "
        f"{args.rounds} rounds; {args.workers} workers x {args.threads} threads; "
        f"latency {args.latency * 1000:.0f} ms; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"incremental store-updates: {len(done)} in {span:.1f} s "
        f"= {len(done) / span * 60:.0f} a minute (wall {elapsed:.1f} s)"
    )
    print(f"failures: {len(done) - len(ok)}")
    print(
        f"worker CPU: {worker_cpu:.1f} s in all, {worker_cpu / len(done) * 1000:.0f} ms a run "
        f"(polling the queue included); at that cost one core does "
        f"{60 * len(done) / worker_cpu:.0f} runs a minute"
    )
    print(summary("queue wait", waits))
    print(summary("run time", times))
    if big_run is not None:
        big = Run.objects.get(pk=big_run.pk)
        big_start = big.started_at or big.created_at
        during = [
            (r.started_at - r.created_at).total_seconds()
            for r in done
            if r.started_at
            and r.created_at >= big_start
            and (big.finished_at is None or r.created_at <= big.finished_at)
        ]
        print(
            f"big full update ({args.big} items): {big.status} {big.error_code} (interrupted: "
            f"still running when the small runs were done), {big.pages} pages; "
            f"{len(during)} small runs queued while it ran"
        )
        print(summary("small stores' queue wait during the big update", during))
    for standin, _ in standins:
        standin.stop()


if __name__ == "__main__":
    main()
