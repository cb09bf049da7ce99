"""Runs as records (issue #4): one at a time per store, claimed once, never left
"running" by a dead worker, and whole pages only."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.db import connection as db_connection
from django.utils import timezone

from catalog.models import Item, ItemChange
from erp.engine import UpdateAlreadyRunning, claim, execute_run, request_update
from erp.models import Run, RunStatus
from nonsistemas_standin import Fault
from stores.models import Membership
from tests.conftest import ERP_PASSWORD, ERP_USER
from tests.erp.sync_helpers import connect, make_items

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_update_requests_at_once_start_exactly_one_run(store, standin):
    connect(store, standin)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def press() -> None:
        barrier.wait()
        try:
            request_update(store, enqueue=False)
            outcomes.append("started")
        except UpdateAlreadyRunning:
            outcomes.append("already running")
        finally:
            db_connection.close()

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already running", "started"]
    assert Run.objects.filter(store=store).count() == 1


def test_a_run_delivered_to_two_workers_runs_once(store, standin):
    connect(store, standin)
    run = request_update(store, enqueue=False)
    assert claim(run.pk) is True
    assert claim(run.pk) is False
    # A second delivery of the task finds it taken and does nothing.
    assert execute_run(run.pk).status == RunStatus.RUNNING


@pytest.mark.parametrize("how", ["removed from the store", "account deleted"])
def test_a_panel_update_whose_requester_lost_access_before_it_ran_changes_nothing(
    store, standin, admin_user, how
):
    connect(store, standin)
    make_items(store, [("SKU-1", 1, "1.00")])
    standin.load([{"codigo": "SKU-1", "stock": "9", "precio_mayorista": "2.00"}])
    run = request_update(store, user=admin_user, origin="panel", enqueue=False)
    if how == "removed from the store":
        Membership.objects.filter(user=admin_user, store=store).delete()
    else:
        get_user_model().objects.filter(pk=admin_user.pk).delete()
    run = execute_run(run.pk)
    assert run.status == RunStatus.FAILED
    assert "ya no administra esta tienda" in run.error_message
    assert Item.objects.get(store=store, sku="SKU-1").stock == 1


def test_a_run_whose_worker_died_is_marked_interrupted_and_another_can_start(store, standin):
    connect(store, standin)
    dead = request_update(store, enqueue=False)
    claim(dead.pk)
    Run.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    fresh = request_update(store, enqueue=False)
    dead.refresh_from_db()
    assert dead.status == RunStatus.FAILED
    assert dead.error_code == "interrupted"
    assert fresh.status == RunStatus.QUEUED


def _database_for_subprocess(tmp_path: Path) -> tuple[str, Any]:
    """A database of its own for the killed worker: a SQLite file, or a fresh
    PostgreSQL database when the suite runs on PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        path = tmp_path / "killed.sqlite3"

        def query_sqlite(sql: str) -> list[Any]:
            with sqlite3.connect(path) as conn:  # commits on leaving the block
                return conn.execute(sql).fetchall()

        return f"sqlite:///{path}", query_sqlite
    import psycopg

    base = url.rsplit("/", 1)[0]
    name = f"vxm_killed_{os.getpid()}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')

    def query(sql: str) -> list[Any]:
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    return f"{base}/{name}", query


def test_worker_killed_mid_run_leaves_whole_pages_and_the_next_run_converges(tmp_path, standin):
    database_url, query = _database_for_subprocess(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "VXM_ALLOW_LOCAL_ERP": "1",
        "VXM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VXM_NONSISTEMAS_PAGE_SIZE": "10",
    }

    def vxm(
        *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vxm", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    vxm("migrate", "-v", "0")
    vxm("store", "create", "k", "--name", "Killed")
    csv = tmp_path / "items.csv"
    csv.write_text(
        "sku,name,stock,wholesale_price\n"
        + "".join(f"K-{i:02d},Item {i},0,1.00\n" for i in range(30))
    )
    vxm("catalog", "import", "k", str(csv))
    vxm(
        "erp",
        "configure",
        "k",
        "nonsistemas",
        "--url",
        standin.url,
        "--username",
        ERP_USER,
        "--password-stdin",
        stdin=ERP_PASSWORD + "\n",
    )
    standin.load(
        [
            {"codigo": f"K-{i:02d}", "stock": f"{i + 1}.000", "precio_mayorista": "9.99"}
            for i in range(30)
        ]
    )
    # Page 2 hangs, so the worker is killed with page 1 written and page 2 not.
    standin.inject(Fault("delay", delay=60, after_requests=1))
    worker = subprocess.Popen(
        [sys.executable, "-m", "vxm", "erp", "sync", "k"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not query("SELECT pages FROM erp_run WHERE pages >= 1"):
            assert worker.poll() is None, "the worker ended before it could be killed"
            assert time.monotonic() < deadline, "the worker never committed its first page"
            time.sleep(0.05)  # polling the database for the state we wait for
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    standin.clear_faults()

    assert query("SELECT status FROM erp_run") == [("running",)]
    # Whole pages only: page 1's ten items and their history rows, nothing of page 2.
    assert query("SELECT COUNT(*) FROM catalog_itemchange WHERE source = 'erp'") == [(10,)]
    assert query("SELECT COUNT(*) FROM catalog_item WHERE stock > 0") == [(10,)]

    again = vxm("erp", "sync", "k", check=False)
    assert again.returncode != 0 and "curso" in again.stderr  # "ya hay una actualización en curso"
    # Time passes with no heartbeat: the dead run is given up and a new one runs.
    query("UPDATE erp_run SET heartbeat_at = '2000-01-01 00:00:00+00:00'")
    final = vxm("erp", "sync", "k", "--json")
    assert '"succeeded"' in final.stdout
    assert query("SELECT status, error_code FROM erp_run ORDER BY id") == [
        ("failed", "interrupted"),
        ("succeeded", ""),
    ]
    assert query("SELECT COUNT(*) FROM catalog_item WHERE stock > 0") == [(30,)]
    assert ItemChange.objects.count() == 0  # the test database was never touched
