"""Benchmark: pages and pruning with millions of history rows.

    .venv/bin/python benchmarks/history_scale.py [--rows 1000000] [--items 100000]
        [--days 730] [--retention 400] [--database-url URL] [--repeat 7] [--explain]

    # the size issue #10 asks about, on PostgreSQL:
    .venv/bin/python benchmarks/history_scale.py --rows 10000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/wt_e_bench

Fills a database (a new SQLite file in a temporary directory, or the scratch database
given, flushed first; a PostgreSQL database that does not exist is created) with one
store of `--items` items and `--rows` history rows (`ItemChange`) spread over `--days`
days, written by an update every hour (its run, finished, with 20 issues each; one
full update with 50,000 issues), in SQL (`generate_series` on PostgreSQL, a recursive
CTE on SQLite), never row by row. One item is "hot": one change in 500 is its
(20,000 at 10 million).
PostgreSQL then gets the ANALYZE its autovacuum would run after such a load.

Then, through the real views (Django's test client, logged in), it times the median
and worst of `--repeat` requests of: the item page (a typical item; the hot item's
newest page and a page deep in its history), the run page (a run's changes, the big
run's issues first and last page, one kind), the catalog list and the history of runs;
then a dry run of pruning at `--retention` days and the pruning pass itself: rows per
second, number of batches and the longest batch (one transaction). `--explain` prints
the query plans of the history page and of a pruning batch. It asserts nothing.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 1_000_000
# One history row in HOT_EVERY is of the same ("hot") item: 20,000 at 10 million.
HOT_EVERY = 500
ISSUES_PER_RUN = 20
BIG_RUN_ISSUES = 50_000


def _create_postgres_database(url: str) -> None:
    import psycopg
    from dj_database_url import parse

    db = parse(url)
    admin: dict[str, Any] = dict(
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
    )
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
            print(f"created database {db['NAME']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--retention", type=int, default=400)
    parser.add_argument("--database-url", help="a scratch database (it is flushed)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database given as it is (filled by an earlier run), without loading",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vxm-history-"))
    if args.database_url and args.database_url.startswith(("postgres://", "postgresql://")):
        _create_postgres_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vxm.settings"
    os.environ["VXM_RETENTION_DAYS"] = str(args.retention)
    sys.path.insert(0, str(ROOT))

    import warnings

    import django

    # The test client's static files middleware, without collectstatic.
    warnings.filterwarnings("ignore", "No directory at")
    django.setup()
    from django.core.management import call_command

    if args.database_url and not args.reuse:
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from catalog.models import Item, ItemChange
    from erp.models import Run, RunIssue
    from stores.models import Membership, Store
    from vxm import retention

    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(days=args.days)
    runs = args.days * 24
    started = time.perf_counter()
    loader = _Postgres(connection) if connection.vendor == "postgresql" else _Sqlite(connection)
    if args.reuse:
        store = Store.objects.get(slug="bench")
        get_user_model().objects.filter(username="b@bench.test").delete()
        runs = Run.objects.count()
    else:
        store = Store.objects.create(name="Distribuidora Benchmark", slug="bench")
        loader.load(store.pk, t0=t0, days=args.days, items=args.items, runs=runs, rows=args.rows)
    loaded = time.perf_counter() - started
    counts = {
        "items": Item.objects.count(),
        "history": ItemChange.objects.count(),
        "runs": Run.objects.count(),
        "issues": RunIssue.objects.count(),
    }
    print(
        f"{connection.vendor}: {counts['items']:,} items, {counts['history']:,} history rows, "
        f"{counts['runs']:,} runs, {counts['issues']:,} issues over {args.days} days; "
        f"loaded in {loaded:.0f} s; database {loader.size()}"
    )

    user = get_user_model().objects.create_user(username="b@bench.test", password="x" * 12)
    Membership.objects.create(store=store, user=user)
    setup_test_environment()
    client = Client()
    client.force_login(user)

    first_item = Item.objects.filter(store=store).order_by("pk").values_list("pk", flat=True)[0]
    typical = first_item + args.items // 2
    hot = first_item
    hot_history = ItemChange.objects.filter(item_id=hot).order_by("-at", "-id")
    deep = hot_history.values_list("pk", flat=True)[hot_history.count() * 3 // 4]
    a_run = Run.objects.order_by("pk").values_list("pk", flat=True)[runs * 3 // 4 - 1]
    big_run = Run.objects.order_by("-pk").values_list("pk", flat=True)[0]
    big_issues = RunIssue.objects.filter(run_id=big_run).order_by("-pk")
    near_end = big_issues.values_list("pk", flat=True)[10]

    def item(pk: int) -> str:
        return reverse("catalog:item", args=[store.slug, pk])

    def run(pk: int) -> str:
        return reverse("erp:run", args=[store.slug, pk])

    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("item page, typical item", item(typical), {}),
        ("item page, hot item, newest", item(hot), {}),
        ("item page, hot item, deep page", item(hot), {"older_than": deep}),
        ("item page, hot item, back a page", item(hot), {"newer_than": deep}),
        ("run page, an hourly run", run(a_run), {}),
        ("run page, 50,000 issues, first", run(big_run), {}),
        ("run page, 50,000 issues, last", run(big_run), {"i_after": near_end}),
        ("run page, issues of one kind", run(big_run), {"kind": "unmatched"}),
        ("catalog list, page 1", reverse("catalog:list", args=[store.slug]), {}),
        ("history of runs, page 1", reverse("erp:runs", args=[store.slug]), {}),
        ("history of runs, page 200", reverse("erp:runs", args=[store.slug]), {"page": 200}),
    ]
    print(f"{'case':<36} {'median':>9} {'worst':>9}")
    for label, url, params in cases:
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            response = client.get(url, params)
            times.append(time.perf_counter() - began)
            assert response.status_code == 200, (label, response.status_code)
        print(f"{label:<36} {statistics.median(times) * 1000:7.1f}ms {max(times) * 1000:7.1f}ms")

    if args.explain:
        _explain(connection, "history page", hot_history[:51])
        cutoff = retention.cutoff_for(args.retention)
        old = ItemChange.objects.filter(at__lt=cutoff).order_by()
        _explain(
            connection,
            "where the walk ends (once per pass)",
            old.order_by("-at").values("pk")[:10_000],
        )
        _explain(connection, "a pruning batch", old.filter(pk__gte=1, pk__lte=10_000))

    began = time.perf_counter()
    dry = retention.prune(days=args.retention, dry_run=True)
    print(
        f"dry run at {args.retention} days: {time.perf_counter() - began:.1f} s, would delete "
        + ", ".join(f"{name} {count:,}" for name, count in dry.counts.items())
    )
    report = retention.prune(days=args.retention)
    deleted = report.total
    print(
        f"prune at {args.retention} days: {deleted:,} rows in {report.seconds:.1f} s "
        f"({deleted / report.seconds:,.0f} rows/s), {report.batches:,} batches, "
        f"longest batch {report.longest_batch * 1000:.0f} ms; "
        + ", ".join(f"{name} {count:,}" for name, count in report.counts.items())
    )
    again = retention.prune(days=args.retention)
    print(f"second pass at once: {again.total:,} rows in {again.seconds:.2f} s")
    if connection.vendor == "postgresql":
        # What autovacuum does after a large delete, before the next daily pass.
        with connection.cursor() as cursor:
            began = time.perf_counter()
            cursor.execute("VACUUM ANALYZE catalog_itemchange")
            print(f"VACUUM ANALYZE catalog_itemchange: {time.perf_counter() - began:.1f} s")
        again = retention.prune(days=args.retention)
        print(f"pass after vacuum: {again.total:,} rows in {again.seconds:.2f} s")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp)


def _explain(connection: Any, label: str, queryset: Any, select: str = "") -> None:
    sql, params = queryset.query.sql_with_params()
    if select:  # the same WHERE, another SELECT list (an aggregate)
        sql = f"SELECT {select} FROM" + sql.split(" FROM", 1)[1]
    prefix = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    print(f"  plan: {label}")
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} {sql}", params)
        for row in cursor.fetchall():
            print("      ", " ".join(str(c) for c in row))


class _Postgres:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str, params: dict[str, Any]) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)

    def size(self) -> str:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            return str(cursor.fetchone()[0])

    def load(
        self, store: int, *, t0: datetime, days: int, items: int, runs: int, rows: int
    ) -> None:
        p = {
            "hot": HOT_EVERY,
            "store": store,
            "t0": t0,
            "days": days,
            "items": items,
            "runs": runs,
            "rows": rows,
        }
        self.execute(
            """
            INSERT INTO catalog_item (store_id, sku, sku_key, search_text, name, stock,
                wholesale_price, erp_locked, created_at, updated_at)
            SELECT %(store)s, 'ACE-' || lpad(n::text, 6, '0'), 'ace-' || lpad(n::text, 6, '0'),
                'ace-' || lpad(n::text, 6, '0') || E'\\nyerba mate ' || n, 'Yerba Mate Ñandú ' || n,
                n %% 60, 1000 + n %% 9000, false, %(t0)s, %(t0)s
            FROM generate_series(1, %(items)s) n
            """,
            p,
        )
        # One finished update an hour; the last one is a full update with many issues.
        self.execute(
            """
            INSERT INTO erp_run (store_id, kind, status, "full", origin, mode, phase,
                guard_findings, total_items, created_at, started_at, finished_at, heartbeat_at,
                received, matched, stock_changed, price_changed, unchanged, unmatched,
                ambiguous, invalid, price_rejected, discontinued, locked, changed_meanwhile,
                reread, pages, requests, retries, relogins, error_code, error_message)
            SELECT %(store)s, 'nonsistemas', 'warnings', false, 'schedule', 'update', '',
                '[]', NULL, t, t, t + interval '1 hour' * 0.99, t,
                0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, '', ''
            FROM (SELECT %(t0)s::timestamptz + (k::float8 / %(runs)s) * %(days)s * interval '1 day'
                  AS t FROM generate_series(0, %(runs)s - 1) k) s
            """,
            p,
        )
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT min(id) FROM erp_run")
            p["run0"] = cursor.fetchone()[0]
            cursor.execute("SELECT min(id) FROM catalog_item")
            p["item0"] = cursor.fetchone()[0]
        self.execute(
            """
            INSERT INTO erp_runissue (run_id, kind, code, sku, reason)
            SELECT %(run0)s + k, 'unmatched', 'SIN-' || k || '-' || i, '',
                'El código no está en la tienda'
            FROM generate_series(0, %(runs)s - 1) k, generate_series(1, 20) i
            """,
            p,
        )
        self.execute(
            """
            INSERT INTO erp_runissue (run_id, kind, code, sku, reason)
            SELECT %(run0)s + %(runs)s - 1,
                CASE WHEN i %% 10 = 0 THEN 'invalid' ELSE 'unmatched' END,
                'NUEVO-' || i, '', 'El código no está en la tienda'
            FROM generate_series(1, %(big)s) i
            """,
            {**p, "big": BIG_RUN_ISSUES},
        )
        for start in range(0, rows, CHUNK):
            began = time.perf_counter()
            self.execute(
                """
                INSERT INTO catalog_itemchange (store_id, item_id, at, source, actor, run_id,
                    old_stock, new_stock, old_price, new_price)
                SELECT %(store)s,
                    CASE WHEN n %% %(hot)s = 0 THEN %(item0)s
                         ELSE %(item0)s + (n::bigint * 7919) %% %(items)s END,
                    %(t0)s::timestamptz + (n::float8 / %(rows)s) * %(days)s * interval '1 day',
                    'erp', 'NonSistemas', %(run0)s + (n::bigint * %(runs)s / %(rows)s),
                    n %% 100, (n + 1) %% 100,
                    CASE WHEN n %% 3 = 0 THEN 1000 + n %% 9000 END,
                    CASE WHEN n %% 3 = 0 THEN 1001 + n %% 9000 END
                FROM generate_series(%(start)s, %(end)s - 1) n
                """,
                {**p, "start": start, "end": min(start + CHUNK, rows)},
            )
            print(
                f"  history rows {min(start + CHUNK, rows):>11,}  "
                f"({time.perf_counter() - began:.1f} s)",
                flush=True,
            )
        self.execute("ANALYZE", {})


class _Sqlite(_Postgres):
    def size(self) -> str:
        path = Path(self.connection.settings_dict["NAME"])
        return f"{path.stat().st_size / 2**20:,.0f} MB"

    def load(
        self, store: int, *, t0: datetime, days: int, items: int, runs: int, rows: int
    ) -> None:
        # Times as Django stores them in SQLite: UTC text.
        p = {
            "hot": HOT_EVERY,
            "store": store,
            "t0": t0.strftime("%Y-%m-%d %H:%M:%S"),
            "days": days,
            "items": items,
            "runs": runs,
            "rows": rows,
        }
        series = (
            "WITH RECURSIVE s(n) AS (SELECT %(lo)s UNION ALL SELECT n + 1 FROM s WHERE n < %(hi)s)"
        )
        self.execute(
            series
            + """
            INSERT INTO catalog_item (store_id, sku, sku_key, search_text, name, stock,
                wholesale_price, erp_locked, created_at, updated_at)
            SELECT %(store)s, 'ACE-' || printf('%%06d', n), 'ace-' || printf('%%06d', n),
                'ace-' || printf('%%06d', n) || char(10) || 'yerba mate ' || n,
                'Yerba Mate Ñandú ' || n, n %% 60, 1000 + n %% 9000, 0, %(t0)s, %(t0)s
            FROM s
            """,
            {**p, "lo": 1, "hi": items},
        )
        self.execute(
            series
            + """
            INSERT INTO erp_run (store_id, kind, status, "full", origin, mode, phase,
                guard_findings, total_items, created_at, started_at, finished_at, heartbeat_at,
                received, matched, stock_changed, price_changed, unchanged, unmatched,
                ambiguous, invalid, price_rejected, discontinued, locked, changed_meanwhile,
                reread, pages, requests, retries, relogins, error_code, error_message)
            SELECT %(store)s, 'nonsistemas', 'warnings', 0, 'schedule', 'update', '',
                '[]', NULL, t, t, strftime('%%Y-%%m-%%d %%H:%%M:%%f', julianday(t) + 0.99 / 24), t,
                0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, '', ''
            FROM (SELECT strftime('%%Y-%%m-%%d %%H:%%M:%%f',
                         julianday(%(t0)s) + (n * 1.0 / %(runs)s) * %(days)s) AS t FROM s)
            """,
            {**p, "lo": 0, "hi": runs - 1},
        )
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT min(id) FROM erp_run")
            p["run0"] = cursor.fetchone()[0]
            cursor.execute("SELECT min(id) FROM catalog_item")
            p["item0"] = cursor.fetchone()[0]
        self.execute(
            series
            + """
            INSERT INTO erp_runissue (run_id, kind, code, sku, reason)
            SELECT %(run0)s + n / 20, 'unmatched', 'SIN-' || n, '', 'El código no está en la tienda'
            FROM s
            """,
            {**p, "lo": 0, "hi": runs * ISSUES_PER_RUN - 1},
        )
        self.execute(
            series
            + """
            INSERT INTO erp_runissue (run_id, kind, code, sku, reason)
            SELECT %(run0)s + %(runs)s - 1,
                CASE WHEN n %% 10 = 0 THEN 'invalid' ELSE 'unmatched' END,
                'NUEVO-' || n, '', 'El código no está en la tienda'
            FROM s
            """,
            {**p, "lo": 1, "hi": BIG_RUN_ISSUES},
        )
        for start in range(0, rows, CHUNK):
            began = time.perf_counter()
            self.execute(
                series
                + """
                INSERT INTO catalog_itemchange (store_id, item_id, at, source, actor, run_id,
                    old_stock, new_stock, old_price, new_price)
                SELECT %(store)s,
                    CASE WHEN n %% %(hot)s = 0 THEN %(item0)s
                         ELSE %(item0)s + (n * 7919) %% %(items)s END,
                    strftime('%%Y-%%m-%%d %%H:%%M:%%f',
                             julianday(%(t0)s) + (n * 1.0 / %(rows)s) * %(days)s),
                    'erp', 'NonSistemas', %(run0)s + (n * %(runs)s / %(rows)s),
                    n %% 100, (n + 1) %% 100,
                    CASE WHEN n %% 3 = 0 THEN 1000 + n %% 9000 END,
                    CASE WHEN n %% 3 = 0 THEN 1001 + n %% 9000 END
                FROM s
                """,
                {**p, "lo": start, "hi": min(start + CHUNK, rows) - 1},
            )
            print(
                f"  history rows {min(start + CHUNK, rows):>11,}  "
                f"({time.perf_counter() - began:.1f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
