"""Benchmark: the integration's health and the catalog's "updated … ago" line on a
300,000-item store with a long history of runs.

    .venv/bin/python benchmarks/erp_health.py [--items 300000] [--runs 20000]
        [--database-url URL] [--repeat 5]

Builds a store from the stand-in's generated catalog (one SKU in 500 doubled with
another spelling of its key, so the store has ambiguous groups), a NonSistemas
connection and `--runs` finished runs (an update every few minutes for months: one
in 500 full, one in 50 failed, previews among them), in a new SQLite database in a
temporary directory, or in the database given (flushed first: give it a scratch
one). Then it prints the median and worst wall time of `--repeat` calls of
erp.health.health() alone and of the pages that show it, through the real views
(Django's test client, logged in). It asserts nothing.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--database-url", help="a scratch database (it is flushed)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vxm-bench-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vxm.settings"
    if not os.environ.get("VXM_ENCRYPTION_KEYS"):
        from cryptography.fernet import Fernet

        os.environ["VXM_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
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
    from django.urls import reverse

    from catalog.models import ChangeSource, Item
    from catalog.writes import CatalogWriter
    from erp import health
    from erp.models import Connection, ErpKind, Run, RunMode, RunStatus
    from nonsistemas_standin.generation import generate
    from stores.models import Membership, Store

    store = Store.objects.create(name="Benchmark", slug="bench")
    started = time.perf_counter()
    rows = []
    for n, item in enumerate(generate(args.items, seed=7)):
        rows.append((item.codigo, item.descripcion, n % 60, Decimal(1000 + n % 90_000)))
        if n % 500 == 3:  # the same key, another spelling: an ambiguous group
            rows.append((item.codigo.lower(), item.descripcion, 1, Decimal(1000)))
    at = datetime.now(UTC)
    with transaction.atomic():
        writer = CatalogWriter(store.pk, at=at, source=ChangeSource.CSV, actor="benchmark")
        for start in range(0, len(rows), 10_000):
            writer.create_items(rows[start : start + 10_000])

    erp = Connection(store=store, kind=ErpKind.NONSISTEMAS, url="https://erp.example", username="u")
    erp.set_password("p")
    erp.save()
    runs = []
    for n in range(args.runs):
        finished = at - timedelta(minutes=5 * (args.runs - n))
        whole = n % 500 == 0
        runs.append(
            Run(
                store=store,
                kind=ErpKind.NONSISTEMAS,
                mode=RunMode.PREVIEW if n % 97 == 5 else RunMode.UPDATE,
                status=RunStatus.FAILED if n % 50 == 49 else RunStatus.SUCCEEDED,
                full=whole,
                desde=None if whole else finished - timedelta(minutes=5),
                started_at=finished - timedelta(seconds=30),
                finished_at=finished,
                received=40 if not whole else args.items,
                unmatched=3 if not whole else 1_234,
            )
        )
    Run.objects.bulk_create(runs, batch_size=2_000)
    for table in ("catalog_item", "erp_run"):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {table}")
    print(
        f"{connection.vendor}, {Item.objects.filter(store=store).count():,} items, "
        f"{len(runs):,} runs, loaded in {time.perf_counter() - started:.1f} s"
    )

    user = get_user_model().objects.create_user(username="b@bench.test", password="x" * 12)
    Membership.objects.create(store=store, user=user)
    client = Client()
    client.force_login(user)
    first_item = Item.objects.filter(store=store).order_by("sku_key", "id").first()
    assert first_item is not None

    def timed(label: str, call: Any) -> None:
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            call()
            times.append(time.perf_counter() - began)
        print(f"{label:<44} {statistics.median(times) * 1000:7.1f}ms {max(times) * 1000:7.1f}ms")

    def page(url: str, params: dict[str, str] | None = None) -> Any:
        def get() -> None:
            response = client.get(url, params or {})
            assert response.status_code == 200, response.status_code

        return get

    found = health.health(store)
    print(
        f"health: last success #{found.last_success.pk if found.last_success else None}, "
        f"whole read #{found.whole_read.pk if found.whole_read else None} "
        f"({found.unmatched_codes} codes), {found.ambiguous_groups:,} ambiguous groups"
    )
    print(f"{'case':<44} {'median':>9} {'worst':>9}")
    timed(
        "ambiguous_group_count(fresh=True)", lambda: health.ambiguous_group_count(store, fresh=True)
    )
    timed("erp.health.health() (count cached)", lambda: health.health(store))
    timed("erp.health.last_erp_update()", lambda: health.last_erp_update(store))
    timed("ERP page (integrations)", page(reverse("erp:integrations", args=[store.slug])))
    timed("catalog page 1 (with the freshness line)", page(reverse("catalog:list", args=["bench"])))
    timed(
        "catalog ?sku=ambiguous page 1",
        page(reverse("catalog:list", args=["bench"]), {"sku": "ambiguous"}),
    )
    timed("item page", page(reverse("catalog:item", args=["bench", first_item.pk])))
    if not args.database_url:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
