"""Many stores, many workers (issue 10): big runs on a queue of their own, every
ERP host paced and capped across all workers (erp/pacing.py), and a worker that
runs several tasks at once yet still stops every run at a page boundary."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.db import connections
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from erp import pacing
from erp.engine import execute_run, request_update
from erp.models import Connection, HostLease, Run, RunStatus
from nonsistemas_standin import Fault
from stores.models import Store
from tests.conftest import ERP_PASSWORD, ERP_USER
from tests.erp.sync_helpers import connect, make_items
from tests.erp.test_run_lifecycle import _database_for_subprocess

pytestmark = pytest.mark.django_db(transaction=True)


def _store(slug: str, name: str, standin: Any, items: int = 30) -> Store:
    store = Store.objects.create(name=name, slug=slug)
    make_items(store, [(f" Acé-{slug}#{i:02d} ", 0, "1.00") for i in range(items)])
    connect(store, standin)
    return store


def _queue_of(run: Run) -> str:
    [task] = DBTaskResult.objects.filter(args_kwargs__args=[run.pk])
    return str(task.queue_name)


# ---- queues ---------------------------------------------------------------------


def test_a_full_update_goes_to_the_full_queue_and_an_incremental_one_to_the_default(standin):
    store = _store("sur", "Distribuidora Sur", standin)
    full = request_update(store, full=True, origin="cli")
    assert _queue_of(full) == "full"
    Run.objects.filter(pk=full.pk).update(status=RunStatus.SUCCEEDED)
    # A store never updated reads everything even when asked for "what changed".
    first = request_update(store, origin="cli")
    assert _queue_of(first) == "full"
    Run.objects.filter(pk=first.pk).update(status=RunStatus.SUCCEEDED)
    Connection.objects.filter(store=store).update(watermark=timezone.now())
    incremental = request_update(store, origin="cli")
    assert _queue_of(incremental) == "default"


def test_a_worker_on_the_default_queue_never_picks_a_full_update(standin):
    big = _store("grande", "Mayorista Grande", standin)
    small = _store("chica", "Almacén Chica", standin)
    Connection.objects.filter(store=small).update(watermark=datetime(2026, 1, 1, tzinfo=UTC))
    standin.load([{"codigo": "Acé-chica#01", "stock": "7.000", "precio_mayorista": "9.99"}])
    full = request_update(big, full=True, origin="cli")
    incremental = request_update(small, origin="cli")

    Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="solo-default",
        excluded_queue_names=[],
    ).run()

    assert Run.objects.get(pk=incremental.pk).status == RunStatus.SUCCEEDED
    assert Run.objects.get(pk=full.pk).status == RunStatus.QUEUED


# ---- pacing ---------------------------------------------------------------------


def _logged_at(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["at"]).timestamp()


def test_runs_against_one_host_together_never_exceed_its_rate(standin, settings):
    settings.VXM_ERP_HOST_RATE = 5
    standin.configure(request_limit_per_second=6)
    settings.VXM_NONSISTEMAS_PAGE_SIZE = 10
    stores = [_store(f"t{n}", f"Tienda Nº{n}", standin) for n in range(3)]
    standin.load(
        [
            {"codigo": f"Acé-t{n}#{i:02d}", "stock": f"{i + 1}.000", "precio_mayorista": "9.99"}
            for n in range(3)
            for i in range(30)
        ]
    )
    runs = [request_update(store, origin="cli", enqueue=False) for store in stores]

    def execute(run_id: int) -> None:
        try:
            execute_run(run_id)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=execute, args=(run.pk,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [Run.objects.get(pk=run.pk).status for run in runs] == [RunStatus.SUCCEEDED] * 3
    log = standin.requests()
    assert len(log) >= 3 * 2 + 9  # three logins and every store's pages (90 items / 10)
    moments = sorted(_logged_at(entry) for entry in log)
    # Over the whole of the three runs, at most the configured rate (unpaced, the
    # local stand-in answers some thirty a second)...
    assert (len(moments) - 1) / (moments[-1] - moments[0]) <= 5 * 1.02
    # ...and the stand-in's own limiter (one more a second than the pace, counted
    # as requests arrive) never had to refuse one. Its log stamps answers, not
    # requests, so a busy machine bunches them: no finer measure holds there.
    assert not any(entry["status"] == 429 for entry in log)
    # The run's place is given back as it ends.
    assert pacing.places_held(pacing.host_key(standin.url)) == 0


def test_one_hosts_url_spelled_differently_is_one_host():
    assert pacing.host_key("HTTPS://Erp.Example.com/ns/") == "https://erp.example.com:443"
    assert pacing.host_key("https://erp.example.com:443/api") == "https://erp.example.com:443"
    assert pacing.host_key("http://erp.example.com:8080") != pacing.host_key(
        "http://erp.example.com:8081"
    )


def test_a_place_whose_holder_died_is_free_once_its_lease_expires():
    host = "https://erp.ejemplo.com.ar:443"
    assert pacing.try_place(host, 1, "muerto", ttl=60) == 0
    assert pacing.try_place(host, 1, "vivo", ttl=60) is None  # the cap holds
    # The holder was killed: it renews no more, and its lease runs out.
    HostLease.objects.filter(host=host, holder="muerto").update(expires_at=time.time() - 1)
    assert pacing.try_place(host, 1, "vivo", ttl=60) == 0
    # The dead holder cannot take it back by renewing.
    assert not pacing.renew_place(host, 0, "muerto", ttl=60)
    assert pacing.renew_place(host, 0, "vivo", ttl=60)


# ---- across processes -----------------------------------------------------------


def _two_stores_in_a_database_of_their_own(
    tmp_path: Path, standin: Any, **env_extra: str
) -> tuple[dict[str, str], Any]:
    database_url, query = _database_for_subprocess(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "VXM_ALLOW_LOCAL_ERP": "1",
        "VXM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        **env_extra,
    }
    subprocess.run(
        [sys.executable, "-m", "vxm", "migrate", "-v", "0"], env=env, check=True, timeout=120
    )
    setup = (
        "from catalog.models import Item, sku_key\n"
        "from erp.models import Connection\n"
        "from stores.models import Store\n"
        "for slug in ('a', 'b'):\n"
        "    s = Store.objects.create(name='Tienda ' + slug, slug=slug)\n"
        "    Item.objects.bulk_create([Item(store=s, sku=f'{slug.upper()}-{i:02d}', "
        "sku_key=sku_key(f'{slug.upper()}-{i:02d}'), name='Artículo', stock=0, "
        "wholesale_price=1) for i in range(30)])\n"
        f"    c = Connection(store=s, kind='nonsistemas', url={standin.url!r}, "
        f"username={ERP_USER!r})\n"
        f"    c.set_password({ERP_PASSWORD!r})\n"
        "    c.save()\n"
    )
    subprocess.run(
        [sys.executable, "-m", "vxm", "shell", "-c", setup], env=env, check=True, timeout=120
    )
    # Each item changed at a second of its own: small pages then never meet a
    # second with more changes than a page holds.
    standin.load(
        [
            {
                "codigo": f"{slug}-{i:02d}",
                "stock": f"{i + 1}.000",
                "precio_mayorista": "9.99",
                "modificado": f"2026-01-01T10:{n:02d}:{i:02d}-03:00",
            }
            for n, slug in enumerate(("A", "B"))
            for i in range(30)
        ]
    )
    return env, query


def test_the_concurrency_cap_of_a_host_holds_across_two_worker_processes(tmp_path, standin):
    env, query = _two_stores_in_a_database_of_their_own(
        tmp_path, standin, VXM_ERP_HOST_CONCURRENCY="1"
    )
    # Each run asks for pages of its own sizes (the reader may halve them: a's are
    # 3 to 6, b's 10 to 20), so the stand-in's log tells them apart.
    standin.inject(Fault("delay", delay=0.3, times=6))
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "vxm", "erp", "sync", slug],
            env={**env, "VXM_NONSISTEMAS_PAGE_SIZE": size},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for slug, size in (("a", "6"), ("b", "20"))
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    spans = {}
    for name, sizes in (("a", range(3, 7)), ("b", range(10, 21))):
        moments = [
            _logged_at(entry)
            for entry in standin.requests()
            if entry["path"] == "/api/stock" and int(entry["query"].get("por_pagina", 0)) in sizes
        ]
        assert moments, f"no pages of run {name} were asked"
        spans[name] = (min(moments), max(moments))
    first, second = sorted(spans.values())
    assert first[1] < second[0], f"the two runs overlapped at the host: {spans}"
    assert query("SELECT status FROM erp_run ORDER BY id") == [("succeeded",), ("succeeded",)]


# `vxm erp worker --threads 2 --queue-name default,full`, each run holding at its
# first page boundary while applying until the worker is asked to stop: an
# update reads the whole ERP before it writes (plan, then apply), so this is where
# a stop keeps whole pages. The signal, the worker and the engine are the real ones.
WORKER_STOPPED_WHILE_APPLYING = """
import os, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vxm.settings")
django.setup()
from erp import engine, stopping
engine.APPLY_ROWS = 1  # a transaction per planned page
write = engine.PlanWriter.write
def write_then_hold(writer, changes, stats):
    write(writer, changes, stats)
    deadline = time.monotonic() + 60
    while stopping.requested() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for the SIGTERM the test sends
engine.PlanWriter.write = write_then_hold
from vxm.cli import main
main(["vxm", "erp", "worker", "--threads", "2", "--queue-name", "default,full",
      "--interval", "0.1"])
"""


def _queue_both_stores_updates(env: dict[str, str]) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vxm",
            "shell",
            "-c",
            "from erp.engine import request_update; from stores.models import Store\n"
            "for s in Store.objects.all(): request_update(s, origin='cli')",
        ],
        env=env,
        check=True,
        timeout=120,
    )


def _sigterm_once(worker: subprocess.Popen[bytes], query: Any, both_there: str) -> None:
    """Send the worker SIGTERM once `both_there` counts both runs, and wait for it."""
    try:
        deadline = time.monotonic() + 60
        while query(both_there) != [(2,)]:
            assert worker.poll() is None, "the worker ended before it could be stopped"
            assert time.monotonic() < deadline, "the two runs were never running together"
            time.sleep(0.05)  # polling the database for the state we wait for
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_threaded_worker_runs_two_updates_at_once_and_sigterm_stops_both_at_a_page_boundary(
    tmp_path, standin
):
    env, query = _two_stores_in_a_database_of_their_own(
        tmp_path, standin, VXM_NONSISTEMAS_PAGE_SIZE="10"
    )
    _queue_both_stores_updates(env)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER_STOPPED_WHILE_APPLYING],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Both at once: each has applied a page while the other is still running.
    _sigterm_once(
        worker,
        query,
        "SELECT COUNT(*) FROM erp_run WHERE phase = 'applying' AND stock_changed >= 1 "
        "AND status = 'running'",
    )
    rows = query("SELECT id, store_id, status, error_code, stock_changed FROM erp_run ORDER BY id")
    assert [(status, code) for _, _, status, code, _ in rows] == [("failed", "interrupted")] * 2
    for run_id, store_id, _, _, stock_changed in rows:
        # Whole pages only: exactly the first page of its plan that changes
        # anything is in the catalog, each item with its history row, and no more.
        plan = [
            json.loads(changes) if isinstance(changes, str) else changes
            for (changes,) in query(
                f"SELECT changes FROM erp_plannedpage WHERE run_id = {run_id} ORDER BY seq"
            )
        ]
        first = next(page for page in plan if page)
        assert sum(len(page) for page in plan) == 30 > len(first)
        changed = query(
            f"SELECT id FROM catalog_item WHERE store_id = {store_id} AND stock > 0 ORDER BY id"
        )
        assert [item_id for (item_id,) in changed] == sorted(change[0] for change in first)
        assert query(
            "SELECT COUNT(*) FROM catalog_itemchange c JOIN catalog_item i ON i.id = c.item_id "
            f"WHERE i.store_id = {store_id} AND c.source = 'erp'"
        ) == [(len(first),)]
        assert stock_changed == len(first)
    assert query("SELECT watermark FROM erp_connection") == [(None,), (None,)]


def test_a_threaded_worker_stopped_while_both_updates_read_the_erp_writes_nothing(
    tmp_path, standin
):
    env, query = _two_stores_in_a_database_of_their_own(
        tmp_path, standin, VXM_NONSISTEMAS_PAGE_SIZE="10"
    )
    _queue_both_stores_updates(env)
    # Both runs get their first page; their second ones are slow to come.
    standin.inject(Fault("delay", delay=3, after_requests=2, times=2))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vxm",
            "erp",
            "worker",
            "--threads",
            "2",
            "--queue-name",
            "default,full",
            "--interval",
            "0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Both at once: each has planned a page while the other is still running.
    _sigterm_once(
        worker, query, "SELECT COUNT(*) FROM erp_run WHERE pages >= 1 AND status = 'running'"
    )
    rows = query("SELECT id, status, error_code, pages, received FROM erp_run ORDER BY id")
    assert [(status, code) for _, status, code, _, _ in rows] == [("failed", "interrupted")] * 2
    # Stopped at a page boundary: each page read has its plan row, and not the
    # whole ERP (60 items) was read.
    for run_id, _, _, pages, received in rows:
        assert pages >= 1 and 0 < received < 60
        assert query(f"SELECT COUNT(*) FROM erp_plannedpage WHERE run_id = {run_id}") == [(pages,)]
    # Nothing is written to the catalog before the whole ERP was read.
    assert query("SELECT COUNT(*) FROM catalog_item WHERE stock > 0") == [(0,)]
    assert query("SELECT COUNT(*) FROM catalog_itemchange WHERE source = 'erp'") == [(0,)]
    assert query("SELECT watermark FROM erp_connection") == [(None,), (None,)]


def test_a_worker_started_on_a_misspelt_queue_refuses_to_start_and_names_the_queues():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=r"Cola desconocida: ful\. Las colas son: default, full"):
        call_command("erp", "worker", "--queue-name", "ful")
