"""Benchmark: undo an update that changed the stock and price of 100,000 items, 1% of
which were edited by hand afterwards (left alone and listed).

The update's history is written directly (as the engine writes it: `CatalogWriter`,
source erp, the run's id); the undo runs as `vxm erp undo` does (`request_undo` then
`execute_undo`, in this process). Prints wall time, items per second, database
queries, peak RSS and, with --tracemalloc, the Python heap's peak: constant in the
number of changes, since the undo reads the history in pages of `erp.undo.PAGE_ROWS`.

    .venv/bin/python benchmarks/undo.py [--items 100000] [--database-url URL] [--tracemalloc]

Without --database-url it uses a fresh SQLite file in a temporary folder.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="measure Python heap peak (slower)"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vxm-bench-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vxm.settings")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from catalog.models import ChangeSource, Item, sku_key
    from catalog.writes import CatalogWriter
    from erp.models import ErpKind, Run, RunStatus
    from erp.undo import execute_undo, request_undo
    from stores.models import Store

    if args.database_url:
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)
    store = Store.objects.create(name="Bench", slug=f"bench-undo-{os.getpid()}")
    Item.objects.bulk_create(
        [
            Item(
                store=store,
                sku=f"SKU-{n:06d} Ñ+%",
                sku_key=sku_key(f"SKU-{n:06d} Ñ+%"),
                name="x",
                stock=5,
                wholesale_price=Decimal("1.00"),
            )
            for n in range(args.items)
        ],
        batch_size=2000,
    )
    update = Run.objects.create(
        store=store,
        kind=ErpKind.NONSISTEMAS,
        status=RunStatus.SUCCEEDED,
        origin="cli",
        stock_changed=args.items,
        price_changed=args.items,
    )
    ids = list(Item.objects.filter(store=store).order_by("id").values_list("id", flat=True))
    writer = CatalogWriter(
        store.pk, at=timezone.now(), source=ChangeSource.ERP, actor="NonSistemas", run_id=update.pk
    )
    with transaction.atomic():
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            writer.set_stock_and_price([(pk, 999_999, Decimal("0.01")) for pk in chunk])
            writer.add_history([(pk, 5, 999_999, Decimal("1.00"), Decimal("0.01")) for pk in chunk])
    edited = ids[::100]
    Item.objects.filter(pk__in=edited).update(stock=7)

    queries = 0

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    print(
        f"{args.items:,} items changed by the update, {len(edited):,} edited by hand since; "
        f"database {connection.vendor}"
    )
    if args.tracemalloc:
        tracemalloc.start()
    began = time.perf_counter()
    with connection.execute_wrapper(count):
        run = execute_undo(request_undo(store, update.pk, origin="cli", enqueue=False).pk)
    wall = time.perf_counter() - began
    heap = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"undo: status={run.status} looked at={run.matched} restored(stock/price)="
        f"{run.stock_changed}/{run.price_changed} left alone={run.changed_meanwhile}"
    )
    print(
        f"  wall {wall:.2f} s, {run.matched / wall:,.0f} items/s, {queries} queries, "
        f"peak RSS {rss:,.0f} MiB" + (f", Python heap peak {heap / 2**20:,.1f} MiB" if heap else "")
    )


if __name__ == "__main__":
    main()
