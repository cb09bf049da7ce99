"""Benchmark: the catalog list (paging and search) of a 300,000-item store.

    .venv/bin/python benchmarks/catalog_list.py [--items 300000] [--database-url URL]
        [--repeat 5] [--explain]

Builds a store from the stand-in's generated catalog (Spanish names with accents,
codes like AZU-01234; one SKU in 20 lower-cased) in a new SQLite database in a
temporary directory, or in the database given (flushed first: give it a scratch
one), then requests the list page through the real view (Django's test client,
logged in) and prints the median and worst wall time of `--repeat` requests for
each case: pages at the start, middle and end (cursor links), and searches that
match many items, a few, one, none. No ANALYZE is run on SQLite (the product never
runs it); PostgreSQL gets the ANALYZE its autovacuum would run after such a load.
`--explain` prints each search's query plan. It asserts nothing.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument("--database-url", help="a scratch database (it is flushed)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print the searches' plans")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
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

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from catalog.models import ChangeSource, Item
    from catalog.writes import CatalogWriter
    from nonsistemas_standin.generation import generate
    from stores.models import Membership, Store

    store = Store.objects.create(name="Benchmark", slug="bench")
    started = time.perf_counter()
    rows = []
    for n, item in enumerate(generate(args.items, seed=7)):
        sku = item.codigo.lower() if n % 20 == 7 else item.codigo
        rows.append((sku, item.descripcion, n % 60, Decimal(1000 + n % 90_000)))
    at = datetime.now(UTC)
    with transaction.atomic():
        writer = CatalogWriter(store.pk, at=at, source=ChangeSource.CSV, actor="benchmark")
        for start in range(0, len(rows), 10_000):
            writer.create_items(rows[start : start + 10_000])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_item")
    print(
        f"{connection.vendor}, {Item.objects.filter(store=store).count():,} items, "
        f"loaded in {time.perf_counter() - started:.1f} s"
    )

    user = get_user_model().objects.create_user(username="b@bench.test", password="x" * 12)
    Membership.objects.create(store=store, user=user)
    # Lets the client see each response's context (the items shown, the count).
    setup_test_environment()
    client = Client()
    client.force_login(user)
    url = reverse("catalog:list", args=[store.slug])

    ordered = Item.objects.filter(store=store).order_by("sku_key", "id")
    middle = ordered.values_list("pk", flat=True)[args.items // 2]
    last = ordered.reverse().values_list("pk", flat=True)[0]
    one = rows[args.items // 3][0]
    cases: list[tuple[str, dict[str, Any]]] = [
        ("page 1", {}),
        ("page in the middle (after=id)", {"after": middle}),
        ("previous page from the middle", {"before": middle}),
        ("last page", {"before": last}),
        ("stock: sin stock, page 1", {"stock": "out"}),
        ("stock: stock bajo, middle", {"stock": "low", "after": middle}),
        ("search 'azucar' (1 in 19)", {"q": "azucar"}),
        ("search 'AZÚCAR pradera'", {"q": "AZÚCAR pradera"}),
        ("search 'jamon' + sin stock", {"q": "jamon", "stock": "out"}),
        (f"search one SKU '{one}'", {"q": one}),
        ("search 'malbec 750 caja x12'", {"q": "malbec 750 caja x12"}),
        ("search 'zzzz' (nothing)", {"q": "zzzz"}),
        ("search 'a' (almost all)", {"q": "a"}),
    ]
    print(f"{'case':<40} {'median':>9} {'worst':>9}  shown  total")
    for label, params in cases:
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            response = client.get(url, params)
            times.append(time.perf_counter() - began)
            assert response.status_code == 200, response.status_code
        context = response.context
        total = f"{'>' if context['total_capped'] else ''}{context['total']:,}"
        print(
            f"{label:<40} {statistics.median(times) * 1000:7.1f}ms "
            f"{max(times) * 1000:7.1f}ms  {len(context['items']):5}  {total}"
        )
        if args.explain and "q" in params:
            _explain(connection, store, params)
    if args.keep:
        print(f"kept {tmp}")
    elif not args.database_url:
        shutil.rmtree(tmp)


def _explain(connection: Any, store: Any, params: dict[str, Any]) -> None:
    from catalog.views import _filtered

    items = _filtered(store, params.get("q", ""), params.get("stock", ""))
    query = items.order_by("sku_key", "id")[:51]
    sql, sql_params = query.query.sql_with_params()
    prefix = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} {sql}", sql_params)
        for row in cursor.fetchall():
            print("      ", " ".join(str(c) for c in row))


if __name__ == "__main__":
    main()
