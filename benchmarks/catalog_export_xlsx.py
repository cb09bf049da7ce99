"""Benchmark: export a 300,000-item catalog as XLSX and as the panel's Excel CSV.

    .venv/bin/python benchmarks/catalog_export_xlsx.py [--rows 300000] [--tracemalloc]

Migrates a new SQLite database in a temporary directory (DATABASE_URL is set
before Django loads, so the real database is never touched), inserts the items,
then times the XLSX export to a file (what `vxm catalog export --format xlsx
--output` and the panel's download do) and the panel's CSV. Prints wall time,
rows/s, file size and the peak memory; it asserts nothing.

Peak RSS is the process's maximum so far (it only grows), printed before and after
each export: the growth is what the export took. With --tracemalloc each export
also reports the peak of Python allocations, but runs slower.
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


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--tracemalloc", action="store_true", help="Python allocation peaks")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vxm-bench-xlsx-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vxm.settings"
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    # Imported only now: they need Django set up on the temporary database.
    from catalog import export
    from catalog.models import Item, sku_key
    from stores.models import Store
    from vxm.spreadsheets import report_locale

    store = Store.objects.create(name="Benchmark", slug="bench")
    started = time.perf_counter()
    batch: list[Item] = []
    for i in range(args.rows):
        sku = f"SKU-{i:07d}"
        batch.append(
            Item(
                store=store,
                sku=sku,
                sku_key=sku_key(sku),
                name=f"Producto de prueba número {i}, caja x{i % 12 + 1}",
                stock=i % 500,
                wholesale_price=Decimal(100 + i % 50_000) + Decimal(i % 100) / 100,
            )
        )
        if len(batch) == 5000:
            Item.objects.bulk_create(batch)
            batch = []
    Item.objects.bulk_create(batch)
    print(f"{args.rows:,} items inserted in {time.perf_counter() - started:.1f} s")
    print(f"max RSS before exporting: {_max_rss_mb():.0f} MB")

    locale = report_locale()
    xlsx = tmp / "catalogo.xlsx"
    csv_path = tmp / "catalogo.csv"

    def run_xlsx() -> None:
        export.write_xlsx(store, str(xlsx), locale)

    def run_csv() -> None:
        with csv_path.open("w", encoding="utf-8", newline="") as f:
            for piece in export.iter_excel_csv(store, locale):
                f.write(piece)

    for label, action, path in (("XLSX", run_xlsx, xlsx), ("CSV es", run_csv, csv_path)):
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        action()
        wall = time.perf_counter() - started
        heap = ""
        if args.tracemalloc:
            heap = f", Python heap peak {tracemalloc.get_traced_memory()[1] / 1024 / 1024:.1f} MB"
            tracemalloc.stop()
        size = path.stat().st_size / 1024 / 1024
        print(
            f"{label}: {wall:.1f} s, {args.rows / wall:,.0f} rows/s, {size:.1f} MB file, "
            f"max RSS {_max_rss_mb():.0f} MB{heap}"
        )
    print(f"files left in {tmp}")


if __name__ == "__main__":
    main()
