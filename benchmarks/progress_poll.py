"""Benchmark: what one progress poll of the ERP page costs the server.

    .venv/bin/python benchmarks/progress_poll.py [--polls 500]

Every store admin with the ERP page open asks for the status box every 2 s while
an update runs (erp/_status.html with erp/_progress.html), so its cost is paid
per open page. Migrates a new SQLite database in a temporary directory
(DATABASE_URL is set before Django loads, so the real database is never
touched), creates a store with a running run, then polls it through Django's
test client, as htmx does (`said` included). Prints the median and 95th
percentile time and the queries per poll; it asserts nothing.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=500)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vxm-bench-poll-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vxm.settings"
    os.environ.setdefault("VXM_ENCRYPTION_KEYS", "Y4nUzxV8o5fP3nQe2sBz1W0k9oYcJzq8rR3hV6wN3mI=")
    os.environ.setdefault("VXM_SECRET_KEY", "bench")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from erp.models import Connection, ErpKind, Run, RunPhase, RunStatus
    from erp.progress import progress_of
    from stores.models import Membership, Store

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    store = Store.objects.create(name="Distribuidora Sur", slug="sur")
    user = get_user_model().objects.create_user(
        username="admin@sur.test", email="admin@sur.test", password="x"
    )
    Membership.objects.create(store=store, user=user)
    erp = Connection(
        store=store, kind=ErpKind.NONSISTEMAS, url="https://erp.example/", username="u"
    )
    erp.set_password("p")
    erp.save()
    run = Run.objects.create(
        store=store,
        kind=ErpKind.NONSISTEMAS,
        status=RunStatus.RUNNING,
        requested_by=user,
        started_at=timezone.now() - timedelta(seconds=40),
        heartbeat_at=timezone.now(),
        phase=RunPhase.PLANNING,
        received=48_000,
        total_items=100_000,
        pages=48,
    )
    client = Client()
    client.force_login(user)
    url = reverse("erp:status", args=[store.slug])
    said = progress_of(run).key

    def poll() -> None:
        response = client.get(url, {"said": said}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200

    for _ in range(20):  # warm up: templates compiled, connection open
        poll()
    # Counted by a wrapper: the test client's request_started resets connection.queries.
    queries: list[str] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        poll()
    times = []
    for _ in range(args.polls):
        start = time.perf_counter()
        poll()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"progress poll of a running run, {args.polls} polls (SQLite, one process):")
    print(f"  median {statistics.median(times):.2f} ms, p95 {p95:.2f} ms")
    print(f"  {len(queries)} queries per poll")


if __name__ == "__main__":
    main()
