"""Benchmark: import a 300,000-row catalog CSV into a fresh database.

    .venv/bin/python benchmarks/catalog_import.py [--rows 300000] [--database-url URL]

Generates the CSV in a temporary directory, migrates a new SQLite database there
(DATABASE_URL is set before Django loads, so the real database is never touched;
with --database-url, that database is flushed first: give it a scratch one),
then times: the first import (everything created), the same file again (nothing
changes) and a file with every price changed (everything updated), then the CSV
and JSON exports. Prints wall time, rows/s and peak memory; it asserts nothing.

Peak memory is the process's maximum RSS so far (it only grows). With --tracemalloc
each phase also reports the peak of Python allocations, but runs about twice as
slow, so its times are not the real ones.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_csv(path: Path, rows: int, price_bump: int = 0) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("sku,name,stock,wholesale_price\n")
        for i in range(rows):
            price = 100 + (i % 50_000) + price_bump
            f.write(f"SKU-{i:07d},Producto de prueba número {i},{i % 500},{price}.{i % 100:02d}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--tracemalloc", action="store_true", help="Python allocation peaks")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--database-url", help="a scratch database (it is flushed)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vxm-bench-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vxm.settings"
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command

    if args.database_url:
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)

    # Imported only now: they need Django set up on the temporary database.
    from catalog import export
    from catalog.csv_import import import_csv
    from catalog.models import Item, ItemChange
    from stores.models import Store

    store = Store.objects.create(name="Benchmark", slug="bench")
    first, changed = tmp / "catalog.csv", tmp / "catalog-prices.csv"
    started = time.perf_counter()
    write_csv(first, args.rows)
    write_csv(changed, args.rows, price_bump=1)
    size_mb = first.stat().st_size / 1024 / 1024
    generated_in = time.perf_counter() - started
    print(f"{args.rows:,} rows, {size_mb:.1f} MB CSV, generated in {generated_in:.1f} s")
    from django.db import connection

    print(f"database: {connection.vendor}, max RSS before importing {_max_rss_mb():.0f} MB")

    for label, path in (
        ("first import (all created)", first),
        ("re-import, unchanged", first),
        ("re-import, every price changed", changed),
    ):
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        with path.open("rb") as f:
            report = import_csv(store, f, actor="benchmark")
        elapsed = time.perf_counter() - started
        traced = ""
        if args.tracemalloc:
            traced = f"  Python peak {tracemalloc.get_traced_memory()[1] / 2**20:5.1f} MB"
            tracemalloc.stop()
        print(
            f"{label:<32} {elapsed:6.1f} s  {report.rows / elapsed:9,.0f} rows/s  "
            f"max RSS {_max_rss_mb():4.0f} MB{traced}  "
            f"(created {report.created:,}, updated {report.updated:,}, "
            f"unchanged {report.unchanged:,}, errors {report.error_count})"
        )
    for fmt in export.FORMATS:
        started = time.perf_counter()
        size = sum(len(piece) for piece in export.iter_export(store, fmt))
        elapsed = time.perf_counter() - started
        print(
            f"{'export ' + fmt:<32} {elapsed:6.1f} s  {args.rows / elapsed:9,.0f} rows/s  "
            f"max RSS {_max_rss_mb():4.0f} MB  ({size / 2**20:.1f} MB of text)"
        )
    print(f"items {Item.objects.count():,}, history rows {ItemChange.objects.count():,}")
    if not args.keep:
        shutil.rmtree(tmp)


def _max_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
