"""Benchmark: one full update of a 100,000-item store from the NonSistemas stand-in,
every item changed, then an incremental update after 1% of the items changed.

Prints wall time, items per second, database queries and peak memory for each,
and, for each, the time of the raw loop (`benchmarks/raw_loop.py`: httpx + orjson +
sqlite3 `executemany` into one table in one transaction) doing the same read
against the same stand-in right after, and the update's time as a multiple of it.
With --rate-limit it also prints the pure rate bound (requests / 10 per second)
and the update's time as a multiple of that.
The stand-in runs in its own process (as a real ERP would), on 127.0.0.1.

    .venv/bin/python benchmarks/sync.py [--items 100000] [--database-url URL]
        [--rate-limit]   keep the contract's 10 requests/s limit (off by default)

Without --database-url it uses a fresh SQLite file in a temporary folder.
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--database-url")
    parser.add_argument("--rate-limit", action="store_true")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="measure Python heap peak (slower)"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vxm-bench-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vxm.settings")
    os.environ["VXM_ALLOW_LOCAL_ERP"] = "1"
    from cryptography.fernet import Fernet

    os.environ["VXM_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()

    import django

    django.setup()
    import raw_loop  # a sibling: this script's folder is on sys.path
    from django.core.management import call_command
    from django.db import connection

    from catalog.models import Item, sku_key
    from erp.engine import execute_run, request_update
    from erp.models import Connection, ErpKind, GuardRails
    from nonsistemas_standin import StandinClient
    from stores.models import Store

    port = free_port()
    standin = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nonsistemas_standin",
            "--port",
            str(port),
            "--items",
            str(args.items),
            "--seed",
            "3",
            "--user",
            "bench",
            "--password",
            "bench-pw",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert standin.stdout is not None
        standin.stdout.readline()  # "listening on ..." once it serves
        url = f"http://127.0.0.1:{port}"
        control = StandinClient(url)
        if not args.rate_limit:
            control.configure(request_limit_per_second=None, login_limit_per_minute=None)

        if args.database_url:
            call_command("flush", "--noinput", verbosity=0)
        call_command("migrate", verbosity=0)
        store = Store.objects.create(name="Bench", slug=f"bench-{port}")
        # Every price here rises from 0.01: the guard rails would hold the update.
        GuardRails.objects.create(
            store=store, zero_stock_on=False, price_on=False, full_drop_on=False
        )
        erp_items = control.items()
        Item.objects.bulk_create(
            [
                Item(
                    store=store,
                    sku=i["codigo"].strip(),
                    sku_key=sku_key(i["codigo"]),
                    name="x",
                    stock=999_999,
                    wholesale_price=Decimal("0.01"),
                )
                for i in erp_items
            ],
            batch_size=2000,
        )
        conn = Connection(store=store, kind=ErpKind.NONSISTEMAS, url=url, username="bench")
        conn.set_password("bench-pw")
        conn.save()

        raw_db = tmp / "raw.sqlite3"
        raw_loop.prepare(
            raw_db, ((i["codigo"].strip(), 999_999, Decimal("0.01")) for i in erp_items)
        )

        def measured(label: str, full: bool) -> None:
            queries = 0

            def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
                nonlocal queries
                queries += 1
                return execute(sql, params, many, context)

            if args.tracemalloc:
                tracemalloc.start()
            start = time.perf_counter()
            with connection.execute_wrapper(count):
                run = execute_run(request_update(store, full=full, origin="cli", enqueue=False).pk)
            wall = time.perf_counter() - start
            heap = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
            tracemalloc.stop()
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{label}: status={run.status} received={run.received} changed(stock/price)="
                f"{run.stock_changed}/{run.price_changed} pages={run.pages} requests={run.requests}"
            )
            print(
                f"  wall {wall:.2f} s, {run.received / wall:,.0f} items/s, {queries} queries, "
                f"peak RSS {rss:,.0f} MiB"
                + (f", Python heap peak {heap / 2**20:,.1f} MiB" if heap else "")
            )
            since = run.desde.isoformat() if run.desde is not None else None
            raw = raw_loop.timed(url, "bench", "bench-pw", raw_db, since)
            print(f"  raw loop {raw:.2f} s: the update takes {wall / raw:.1f}x the raw loop")
            if args.rate_limit:
                bound = run.requests / 10
                print(
                    f"  rate bound {bound:.2f} s ({run.requests} requests at 10/s): "
                    f"{wall / bound:.2f}x the bound"
                )

        limit = "on" if args.rate_limit else "off"
        print(f"{args.items:,} items, database {connection.vendor}, stand-in rate limit {limit}")
        measured("full update (every item changed)", full=False)
        control.advance(600)
        changed = erp_items[::100]
        control.edit([{"codigo": i["codigo"], "stock": "7.000"} for i in changed])
        control.advance(5)
        measured(f"incremental update ({len(changed):,} items changed)", full=False)
    finally:
        standin.terminate()
        standin.wait()


if __name__ == "__main__":
    main()
