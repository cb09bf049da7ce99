"""Runs as records (issue #4): one at a time per store, claimed once, never left
"running" by a dead worker, and whole pages only; a process asked to end
(SIGTERM, Ctrl-C) ends its run at once as interrupted, and a dead one is
recognised within a minute (issue 10)."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.db import connection as db_connection
from django.db.models import QuerySet
from django.utils import timezone

from catalog.models import Item, ItemChange
from erp import engine
from erp.engine import (
    BEAT_EVERY,
    Applier,
    UpdateAlreadyRunning,
    claim,
    execute_run,
    expire_stale_runs,
    request_update,
)
from erp.errors import ErpError
from erp.models import STALE_AFTER, Connection, Run, RunIssue, RunStatus
from erp.sources import ErpItem, FeedStats
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


Vxm = Any  # (*args, stdin=None, check=True) -> CompletedProcess


def _store_for_a_worker(
    tmp_path: Path, standin: Any, **env_extra: str
) -> tuple[dict[str, str], Vxm, Any]:
    """A store "k" of 30 items in a database of its own, connected to the stand-in
    (which has the same 30 items with stock): the environment to run `vxm` in, a
    function running it, and one querying that database."""
    database_url, query = _database_for_subprocess(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "VXM_ALLOW_LOCAL_ERP": "1",
        "VXM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VXM_NONSISTEMAS_PAGE_SIZE": "10",
        **env_extra,
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
    return env, vxm, query


def test_worker_killed_mid_run_leaves_whole_pages_and_the_next_run_converges(tmp_path, standin):
    env, vxm, query = _store_for_a_worker(tmp_path, standin)
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
    # Whole pages only: page 1 was planned (its plan row), and nothing is written
    # to the catalog before the whole ERP was read (issue #11: plan, then apply).
    assert query("SELECT COUNT(*) FROM erp_plannedpage") == [(1,)]
    assert query("SELECT COUNT(*) FROM catalog_itemchange WHERE source = 'erp'") == [(0,)]
    assert query("SELECT COUNT(*) FROM catalog_item WHERE stock > 0") == [(0,)]

    again = vxm("erp", "sync", "k", check=False)
    assert again.returncode != 0 and "curso" in again.stderr  # "ya hay una actualización en curso"
    # Its process is gone, so nothing beats any more: once its heartbeat is older
    # than STALE_AFTER (under a minute) the dead run is given up and a new one runs.
    query(f"UPDATE erp_run SET heartbeat_at = '{_utc(timezone.now() - STALE_AFTER - SECOND)}'")
    final = vxm("erp", "sync", "k", "--json")
    assert '"succeeded"' in final.stdout
    assert query("SELECT status, error_code FROM erp_run ORDER BY id") == [
        ("failed", "interrupted"),
        ("succeeded", ""),
    ]
    assert query("SELECT COUNT(*) FROM catalog_item WHERE stock > 0") == [(30,)]
    assert ItemChange.objects.count() == 0  # the test database was never touched


def _utc(moment: datetime) -> str:
    """A moment as both databases read it in raw SQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


SECOND = timedelta(seconds=1)


def _stopped_mid_run(env: dict[str, str], query: Any, command: list[str], signum: int) -> int:
    """Start `vxm COMMAND`, send it SIGNUM while its run holds on page 2 (page 1
    committed), and return its exit status once it ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vxm", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not query("SELECT pages FROM erp_run WHERE pages >= 1"):
            assert process.poll() is None, "the process ended before it could be stopped"
            assert time.monotonic() < deadline, "the run never committed its first page"
            time.sleep(0.05)  # polling the database for the state we wait for
        process.send_signal(signum)
        # Page 2 is held for a minute by the stand-in: ending before that means the
        # wait was cut short, not waited out.
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _assert_stopped_with_whole_pages_and_next_update_runs(query: Any, vxm: Vxm) -> None:
    [(status, code, message, finished)] = query(
        "SELECT status, error_code, error_message, finished_at FROM erp_run"
    )
    assert (status, code) == ("failed", "interrupted")
    assert "se detuvo" in message and "No se perdió nada" in message
    assert finished is not None
    # Whole pages only: page 1 was planned (its plan row), and nothing is written
    # to the catalog before the whole ERP was read (issue #11: plan, then apply).
    assert query("SELECT COUNT(*) FROM erp_plannedpage") == [(1,)]
    assert query("SELECT COUNT(*) FROM catalog_itemchange WHERE source = 'erp'") == [(0,)]
    assert query("SELECT COUNT(*) FROM catalog_item WHERE stock > 0") == [(0,)]
    assert query("SELECT watermark FROM erp_connection") == [(None,)]
    # No waiting for it to be declared dead: the next update starts at once.
    final = vxm("erp", "sync", "k", "--json")
    assert '"succeeded"' in final.stdout
    assert query("SELECT COUNT(*) FROM catalog_item WHERE stock > 0") == [(30,)]
    assert query("SELECT watermark FROM erp_connection") != [(None,)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_erp_sync_stopped_by_sigterm_or_ctrl_c_ends_its_run_as_interrupted_at_once(
    tmp_path, standin, signum
):
    env, vxm, query = _store_for_a_worker(tmp_path, standin)
    standin.inject(Fault("delay", delay=60, after_requests=1))
    status = _stopped_mid_run(env, query, ["erp", "sync", "k"], signum)
    standin.clear_faults()
    assert status == 128 + signum  # 143 for SIGTERM, 130 for Ctrl-C, as shells expect
    _assert_stopped_with_whole_pages_and_next_update_runs(query, vxm)


def test_a_task_worker_sent_sigterm_mid_run_ends_the_run_as_interrupted_and_exits(
    tmp_path, standin
):
    env, vxm, query = _store_for_a_worker(tmp_path, standin)
    # A run queued as the panel's button does, for the worker to take.
    vxm(
        "shell",
        "-c",
        "from erp.engine import request_update; from stores.models import Store; "
        "request_update(Store.objects.get(slug='k'), origin='cli')",
    )
    standin.inject(Fault("delay", delay=60, after_requests=1))
    status = _stopped_mid_run(
        env,
        query,
        ["db_worker", "--queue-name", "default,full", "--no-startup-delay", "--interval", "0.1"],
        signal.SIGTERM,
    )
    standin.clear_faults()
    assert status == 0  # django_tasks_db's graceful shutdown, once the task returned
    _assert_stopped_with_whole_pages_and_next_update_runs(query, vxm)


def declare_dead(run_id: int) -> None:
    """What another process does when this run's heartbeat is older than STALE_AFTER."""
    run = Run.objects.get(pk=run_id)
    Run.objects.filter(pk=run_id).update(heartbeat_at=timezone.now() - timedelta(minutes=11))
    assert expire_stale_runs(run.store) == 1


def erp_rows(n: int) -> list[dict[str, Any]]:
    return [
        {"codigo": f"HB-{i:02d}", "stock": f"{i + 1}.000", "precio_mayorista": "9.99"}
        for i in range(n)
    ]


def stock_requests(standin: Any) -> int:
    return sum(1 for r in standin.requests() if r["path"] == "/api/stock")


@pytest.fixture
def small_pages(settings: Any) -> None:
    settings.VXM_NONSISTEMAS_PAGE_SIZE = 10


def test_a_live_run_reading_slow_pages_keeps_its_heartbeat_and_is_not_declared_dead(
    store, standin, small_pages
):
    connect(store, standin)
    make_items(store, [(f"HB-{i:02d}", 0, "1.00") for i in range(25)])
    standin.load(erp_rows(25))
    run = request_update(store, origin="cli", enqueue=False)
    slow_from: list[Any] = []

    def then_pages_get_slow(run: Run, stats: Any) -> None:
        if run.received == 10:
            # As if the ERP had kept it waiting for 11 minutes since this batch...
            now = timezone.now()
            Run.objects.filter(pk=run.pk).update(heartbeat_at=now - timedelta(minutes=11))
            slow_from.append(now)
            # ...and the next page is slow too.
            standin.inject(Fault("delay", delay=5))

    outcome: list[Run] = []

    def work() -> None:
        try:
            outcome.append(execute_run(run.pk, progress=then_pages_get_slow))
        finally:
            db_connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            row = Run.objects.get(pk=run.pk)
            if slow_from and row.heartbeat_at is not None and row.heartbeat_at >= slow_from[0]:
                break
            assert row.received <= 10, "no sign of life while the slow page was being read"
            assert time.monotonic() < deadline, "the run never got to its slow page"
            time.sleep(0.01)  # polling the database for the state we wait for
        # The slow page is being read and no batch was applied since: still alive.
        assert row.received == 10
        assert expire_stale_runs(store) == 0
    finally:
        worker.join()
    assert outcome[0].status == RunStatus.SUCCEEDED, outcome[0].error_message
    assert Item.objects.filter(store=store, stock__gt=0).count() == 25


def test_a_live_run_busy_longer_than_stale_after_keeps_beating_and_is_not_declared_dead(
    store, standin, small_pages, monkeypatch
):
    # A page request may take up to the client's deadline (120 s with retries),
    # far more than STALE_AFTER: the run's process beats from a thread of its own.
    monkeypatch.setattr(engine, "BEAT_EVERY", 0.05)
    connect(store, standin)
    make_items(store, [(f"HB-{i:02d}", 0, "1.00") for i in range(25)])
    standin.load(erp_rows(25))
    run = request_update(store, origin="cli", enqueue=False)
    seen: list[tuple[int, int]] = []

    def busy_for_a_long_time(run: Run, stats: Any) -> None:
        if run.received != 10:
            return
        # Nothing of the run beats while it is here, as in a slow page request:
        # its heartbeat is as old as a dead run's...
        silent_since = timezone.now() - STALE_AFTER - timedelta(minutes=1)
        Run.objects.filter(pk=run.pk).update(heartbeat_at=silent_since)
        deadline = time.monotonic() + 30
        while Run.objects.get(pk=run.pk).heartbeat_at == silent_since:
            assert time.monotonic() < deadline, "no sign of life while the run was busy"
            time.sleep(0.01)  # polling the database for the state we wait for
        # ...until the process's beat renews it, and the run is not taken for dead.
        seen.append((expire_stale_runs(store), Run.objects.get(pk=run.pk).received))

    run = execute_run(run.pk, progress=busy_for_a_long_time)
    assert seen == [(0, 10)]
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert Item.objects.filter(store=store, stock__gt=0).count() == 25


def test_a_run_declared_dead_stops_before_asking_the_erp_for_more(store, standin, small_pages):
    connect(store, standin)
    make_items(store, [(f"HB-{i:02d}", 0, "1.00") for i in range(25)])
    standin.load(erp_rows(25))
    run = request_update(store, origin="cli", enqueue=False)

    def dies_after_the_first_batch(run: Run, stats: Any) -> None:
        if run.received == 10:
            declare_dead(run.pk)

    run = execute_run(run.pk, progress=dies_after_the_first_batch)
    assert (run.status, run.error_code) == (RunStatus.FAILED, "interrupted")
    assert stock_requests(standin) == 1  # nothing more asked once it was declared dead
    # Declared dead while reading the ERP: nothing was written to the catalog.
    assert Item.objects.filter(store=store, stock__gt=0).count() == 0
    assert Connection.objects.get(store=store).watermark is None


def test_a_run_declared_dead_writes_no_more_pages(store, standin):
    connect(store, standin)
    make_items(store, [("HB-00", 0, "1.00")])
    run = request_update(store, origin="cli", enqueue=False)
    assert claim(run.pk)
    declare_dead(run.pk)
    page = [
        ErpItem("HB-00", Decimal(5), Decimal("2.00"), "ARS", True, timezone.now()),
        ErpItem("NO-SUCH", Decimal(5), Decimal("2.00"), "ARS", True, timezone.now()),
    ]
    with pytest.raises(ErpError) as e:
        Applier(Run.objects.get(pk=run.pk), store).apply(page, FeedStats())
    assert e.value.code == "interrupted"
    item = Item.objects.get(store=store, sku="HB-00")
    assert (item.stock, item.wholesale_price) == (0, Decimal("1.00"))
    assert not ItemChange.objects.exists()
    assert not RunIssue.objects.exists()
    assert Run.objects.get(pk=run.pk).received == 0


def test_a_run_declared_dead_as_it_finishes_does_not_move_the_watermark(
    store, standin, small_pages
):
    connect(store, standin)
    make_items(store, [(f"HB-{i:02d}", 0, "1.00") for i in range(25)])
    standin.load(erp_rows(25))
    assert execute_run(request_update(store, origin="cli", enqueue=False).pk).status == (
        RunStatus.SUCCEEDED
    )
    watermark = Connection.objects.get(store=store).watermark
    assert watermark is not None
    standin.advance(3600)
    standin.edit([{"codigo": f"HB-{i:02d}", "stock": "50"} for i in range(25)])
    run = request_update(store, origin="cli", enqueue=False)

    def dies_after_the_last_batch(run: Run, stats: Any) -> None:
        if run.received == 25:
            declare_dead(run.pk)

    run = execute_run(run.pk, progress=dies_after_the_last_batch)
    assert (run.status, run.error_code) == (RunStatus.FAILED, "interrupted")
    assert Connection.objects.get(store=store).watermark == watermark


def test_worker_killed_between_a_pages_items_and_their_history_leaves_neither(tmp_path, standin):
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("another connection can hold the history table only on PostgreSQL")
    import psycopg

    # The server checks every 50 ms that the worker is still there, as it notices a
    # closed connection on its own only at the next command.
    env, _, query = _store_for_a_worker(
        tmp_path, standin, PGOPTIONS="-c client_connection_check_interval=50"
    )
    with psycopg.connect(env["DATABASE_URL"]) as blocker:
        # The first page's history INSERT waits for this, after its items' UPDATE.
        blocker.execute("LOCK TABLE catalog_itemchange IN EXCLUSIVE MODE")
        worker = subprocess.Popen(
            [sys.executable, "-m", "vxm", "erp", "sync", "k"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        waiting = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"catalog_itemchange\"%%'"
        )
        try:
            deadline = time.monotonic() + 60
            while not (backend := query(waiting)):
                assert worker.poll() is None, "the worker ended before it could be killed"
                assert time.monotonic() < deadline, "the worker never wrote its first page"
                time.sleep(0.05)  # polling the database for the state we wait for
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        [(pid,)] = backend
        deadline = time.monotonic() + 60
        while query(f"SELECT 1 FROM pg_stat_activity WHERE pid = {int(pid)}"):
            assert time.monotonic() < deadline, "the server never noticed the worker died"
            time.sleep(0.05)  # polling the database for the state we wait for
        blocker.rollback()

    # Items and history agree: the page's UPDATE went with its transaction.
    assert query("SELECT COUNT(*) FROM catalog_item WHERE stock > 0") == [(0,)]
    assert query("SELECT COUNT(*) FROM catalog_itemchange WHERE source = 'erp'") == [(0,)]
    # The whole ERP was read (planned) before the first write; the counters of the
    # written changes went with the page's transaction.
    assert query("SELECT status, received, stock_changed, phase FROM erp_run") == [
        ("running", 30, 0, "applying")
    ]


def test_a_dead_run_is_recognised_within_a_minute():
    # The operator's promise (issue 10): a store whose worker died can update again
    # within a minute. The last beat is at most BEAT_EVERY before the death.
    assert STALE_AFTER + timedelta(seconds=BEAT_EVERY) <= timedelta(minutes=1)
    # ...and a live run may miss beats (a busy database) before it could be taken for dead.
    assert 3 * timedelta(seconds=BEAT_EVERY) <= STALE_AFTER


@pytest.mark.parametrize(
    ("silent_for", "expired"), [(STALE_AFTER - 5 * SECOND, False), (STALE_AFTER + SECOND, True)]
)
def test_a_run_is_declared_dead_only_once_its_heartbeat_is_older_than_stale_after(
    store, standin, silent_for, expired
):
    connect(store, standin)
    run = request_update(store, origin="cli", enqueue=False)
    assert claim(run.pk)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - silent_for)
    assert expire_stale_runs(store) == int(expired)
    assert Run.objects.get(pk=run.pk).status == (RunStatus.FAILED if expired else RunStatus.RUNNING)


def test_a_run_whose_watermark_cannot_be_recorded_is_not_shown_as_succeeded(
    store, standin, monkeypatch, small_pages
):
    # R4: the outcome and the watermark commit together. A success recorded without
    # its watermark would tell the admin the store is up to date when the next run
    # will read it all again (or worse, the other way round).
    connect(store, standin)
    make_items(store, [(f"HB-{i:02d}", 0, "1.00") for i in range(5)])
    standin.load(erp_rows(5))
    update = QuerySet.update

    def connection_update_fails(queryset: QuerySet[Any], **values: Any) -> int:
        if queryset.model is Connection and "watermark" in values:
            raise DatabaseError("the connection was lost")
        return update(queryset, **values)

    monkeypatch.setattr(QuerySet, "update", connection_update_fails)
    run = execute_run(request_update(store, origin="cli", enqueue=False).pk)
    assert run.status == RunStatus.FAILED
    assert Connection.objects.get(store=store).watermark is None
