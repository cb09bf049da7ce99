"""Retention (vxm/retention.py, `vxm prune`): what is older than the retention goes, in
bounded batches; what a person still needs stays."""

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from catalog.models import CatalogImport, ChangeSource, ImportStatus, Item, ItemChange
from erp.models import AuditAction, AuditEvent, Run, RunIssue, RunMode, RunStatus
from stores.models import Store
from vxm import retention

VXM = Path(sys.executable).with_name("vxm")
NOW = timezone.now()
OLD = NOW - timedelta(days=401)
RECENT = NOW - timedelta(days=399)

SKUS = [" Ácido Cítrico 1kg ", "ace-0001", "ACE-0001 + 10%", "Ñandú #3, grande", "Yerba Mate 500g"]


@pytest.fixture
def items(store: Store) -> list[Item]:
    return [
        Item.objects.create(
            store=store, sku=sku, name=f"Producto {sku.strip()}", stock=10, wholesale_price=100
        )
        for sku in SKUS
    ]


def change(item: Item, at: datetime, run: Run | None = None, price: str = "150.00") -> ItemChange:
    return ItemChange.objects.create(
        store_id=item.store_id,
        item=item,
        at=at,
        source=ChangeSource.ERP if run else ChangeSource.MANUAL,
        actor="NonSistemas" if run else "María José Pérez",
        run=run,
        old_price=Decimal("100.00"),
        new_price=Decimal(price),
    )


def run(store: Store, ended: datetime | None, **fields: Any) -> Run:
    """A run that ended at `ended` (None: never started; created then too)."""
    fields.setdefault("status", RunStatus.SUCCEEDED)
    made = Run.objects.create(store=store, kind="nonsistemas", **fields)
    Run.objects.filter(pk=made.pk).update(created_at=ended or OLD, finished_at=ended)
    made.refresh_from_db()
    return made


def issue(of: Run, code: str) -> RunIssue:
    return RunIssue.objects.create(run=of, kind="unmatched", code=code, reason="Sin producto")


@contextmanager
def deletes() -> Iterator[list[tuple[str, int]]]:
    """Every DELETE sent, with how many rows it deleted."""
    seen: list[tuple[str, int]] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith("DELETE"):
            seen.append((sql.split('"')[1], context["cursor"].rowcount))
        return result

    with connection.execute_wrapper(record):
        yield seen


# ----- what goes and what stays --------------------------------------------------------


def test_history_older_than_the_retention_is_pruned_and_newer_history_kept(
    store: Store, items: list[Item]
) -> None:
    old = [change(item, OLD) for item in items]
    kept = [change(item, RECENT) for item in items] + [change(items[0], NOW)]

    report = retention.prune(days=400, now=NOW)

    assert report.counts["item_changes"] == len(old)
    assert set(ItemChange.objects.values_list("pk", flat=True)) == {c.pk for c in kept}
    # The items themselves are never touched.
    assert Item.objects.filter(store=store).count() == len(SKUS)


def test_running_queued_held_and_each_stores_newest_successful_run_are_never_pruned(
    store: Store, other_store: Store
) -> None:
    older_success = run(store, OLD - timedelta(days=30))
    newest_success = run(store, OLD, status=RunStatus.WARNINGS)
    failed = run(store, OLD + timedelta(hours=1), status=RunStatus.FAILED)
    # A preview is not an update of the catalog: it is not "the last update".
    preview = run(store, OLD + timedelta(hours=2), mode=RunMode.PREVIEW)
    held = run(store, None, status=RunStatus.HELD)
    queued = run(store, None, status=RunStatus.QUEUED)
    running = run(other_store, None, status=RunStatus.RUNNING)
    other_newest = run(other_store, OLD - timedelta(days=100))
    for each in (older_success, newest_success, failed, held):
        issue(each, f"COD-{each.pk} ñ")

    report = retention.prune(days=400, now=NOW)

    left = set(Run.objects.values_list("pk", flat=True))
    assert left == {newest_success.pk, held.pk, queued.pk, running.pk, other_newest.pk}
    assert {older_success.pk, failed.pk, preview.pk}.isdisjoint(left)
    assert report.counts["runs"] == 3
    # The issues of a pruned run go with it; those of a kept run stay.
    assert set(RunIssue.objects.values_list("run_id", flat=True)) == {newest_success.pk, held.pk}
    assert report.counts["run_issues"] == 2


def test_a_run_is_pruned_by_when_it_ended_not_when_it_was_asked_for(store: Store) -> None:
    # Held for a day past the horizon's edge, then applied: its changes are recent.
    late = run(store, RECENT, status=RunStatus.FAILED)
    Run.objects.filter(pk=late.pk).update(created_at=OLD - timedelta(days=1))
    retention.prune(days=400, now=NOW)
    assert Run.objects.filter(pk=late.pk).exists()


def test_an_undo_of_a_pruned_run_stays_and_no_longer_points_to_it(
    store: Store, items: list[Item]
) -> None:
    undone = run(store, OLD - timedelta(days=1))
    run(store, OLD)  # the newest successful one, kept
    undo = run(store, RECENT, mode=RunMode.UNDO, undoes=undone, status=RunStatus.FAILED)
    retention.prune(days=400, now=NOW)
    undo.refresh_from_db()
    assert not Run.objects.filter(pk=undone.pk).exists()
    assert undo.undoes_id is None


def test_finished_imports_and_the_audit_log_go_on_their_own_horizons(
    store: Store, settings: Any
) -> None:
    settings.VXM_AUDIT_RETENTION_DAYS = 1825

    def imported(finished: datetime | None, status: str) -> CatalogImport:
        made = CatalogImport.objects.create(
            store=store, actor="Ana", filename="lista de precios, agosto.csv", status=status
        )
        CatalogImport.objects.filter(pk=made.pk).update(finished_at=finished)
        return made

    old_import = imported(OLD, ImportStatus.DONE)
    recent_import = imported(RECENT, ImportStatus.FAILED)
    waiting = imported(None, ImportStatus.QUEUED)
    audit = {
        days: AuditEvent.objects.create(
            store=store, at=NOW - timedelta(days=days), action=AuditAction.CONFIGURED
        )
        for days in (401, 1824, 1826)
    }

    report = retention.prune(days=400, now=NOW)

    assert set(CatalogImport.objects.values_list("pk", flat=True)) == {recent_import.pk, waiting.pk}
    assert not CatalogImport.objects.filter(pk=old_import.pk).exists()
    # The security record outlives the data it is about.
    assert set(AuditEvent.objects.values_list("pk", flat=True)) == {audit[401].pk, audit[1824].pk}
    assert report.counts["imports"] == 1
    assert report.counts["audit_events"] == 1


def test_the_audit_log_is_kept_forever_with_its_retention_at_zero(
    store: Store, settings: Any
) -> None:
    settings.VXM_AUDIT_RETENTION_DAYS = 0
    AuditEvent.objects.create(
        store=store, at=NOW - timedelta(days=5000), action=AuditAction.VERIFIED
    )
    report = retention.prune(days=400, now=NOW)
    assert AuditEvent.objects.count() == 1
    assert report.audit_cutoff is None


def test_the_retention_comes_from_the_setting(
    store: Store, items: list[Item], settings: Any
) -> None:
    settings.VXM_RETENTION_DAYS = 30
    gone, kept = (
        change(items[0], NOW - timedelta(days=31)),
        change(items[0], NOW - timedelta(days=29)),
    )
    retention.prune(now=NOW)
    assert list(ItemChange.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not ItemChange.objects.filter(pk=gone.pk).exists()


# ----- how: bounded batches, dry run, stopping, twice ------------------------------------


def test_each_batch_deletes_at_most_batch_size_rows_in_its_own_statement(
    store: Store, items: list[Item]
) -> None:
    for day in reversed(range(12)):  # written in time order, as the product does
        for item in items[:2]:
            change(item, OLD - timedelta(days=day))
    change(items[0], NOW)

    with deletes() as seen:
        report = retention.prune(days=400, batch_size=5, now=NOW)

    history = [rows for table, rows in seen if table == "catalog_itemchange"]
    assert sum(history) == 24
    assert len(history) >= 5
    assert max(history) <= 5
    assert report.batches >= 5
    assert ItemChange.objects.count() == 1


def test_run_issues_go_in_batches_before_their_runs(store: Store) -> None:
    pruned = run(store, OLD - timedelta(days=2), status=RunStatus.FAILED)
    for n in range(7):
        issue(pruned, f"SIN-PRODUCTO-{n:03}")
    with deletes() as seen:
        retention.prune(days=400, batch_size=3, now=NOW)
    issues = [rows for table, rows in seen if table == "erp_runissue" and rows]
    assert issues == [3, 3, 1]
    assert not Run.objects.filter(pk=pruned.pk).exists()


def test_a_dry_run_deletes_nothing_and_counts_what_it_would(
    store: Store, items: list[Item]
) -> None:
    for item in items:
        change(item, OLD)
    pruned = run(store, OLD - timedelta(days=1), status=RunStatus.FAILED)
    issue(pruned, "X")
    before = (ItemChange.objects.count(), Run.objects.count(), RunIssue.objects.count())

    with deletes() as seen:
        report = retention.prune(days=400, dry_run=True, now=NOW)

    assert seen == []
    assert (ItemChange.objects.count(), Run.objects.count(), RunIssue.objects.count()) == before
    assert report.counts == {
        "item_changes": len(items),
        "run_issues": 1,
        "runs": 1,
        "imports": 0,
        "audit_events": 0,
    }
    # And the real pass deletes exactly that.
    assert retention.prune(days=400, now=NOW).counts == report.counts


def test_pruning_twice_deletes_nothing_the_second_time(store: Store, items: list[Item]) -> None:
    for item in items:
        change(item, OLD)
    assert retention.prune(days=400, now=NOW).total == len(items)
    assert retention.prune(days=400, now=NOW).total == 0


def test_sigterm_stops_the_pass_between_batches_keeping_what_it_deleted(
    store: Store, items: list[Item]
) -> None:
    for day in reversed(range(6)):  # written in time order, as the product does
        for item in items:
            change(item, OLD - timedelta(days=day))

    def terminate_after_first_delete(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        result = execute(sql, *args)
        if sql.lstrip().upper().startswith("DELETE"):
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    with connection.execute_wrapper(terminate_after_first_delete):
        report = retention.prune(days=400, batch_size=10, now=NOW)

    assert report.stopped_by == signal.SIGTERM
    # The batch the signal came in finished whole; nothing after it started.
    assert report.counts["item_changes"] == 10
    assert ItemChange.objects.count() == 20
    # The handler is given back: the next pass goes on and finishes.
    assert retention.prune(days=400, batch_size=10, now=NOW).counts["item_changes"] == 20


# ----- vxm prune -------------------------------------------------------------------------


def vxm(*args: str) -> str:
    out = io.StringIO()
    call_command("prune", *args, stdout=out)
    return out.getvalue()


def test_vxm_prune_prints_what_it_deleted_per_table(
    store: Store, items: list[Item], settings: Any
) -> None:
    for item in items:
        change(item, NOW - timedelta(days=40))
    change(items[0], NOW)

    dry = vxm("--days", "30", "--dry-run")
    assert "no se borró nada" in dry
    assert "historial de productos" in dry
    assert ItemChange.objects.count() == len(items) + 1

    out = vxm("--days", "30")
    lines = {
        line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1]
        for line in out.splitlines()
        if line.startswith("  ")
    }
    assert lines["historial de productos"] == str(len(items))
    assert lines["actualizaciones"] == "0"
    assert ItemChange.objects.count() == 1


def test_vxm_prune_json_is_for_scripts(store: Store, items: list[Item]) -> None:
    change(items[1], NOW - timedelta(days=500))
    data = json.loads(vxm("--json"))
    assert data["deleted"]["item_changes"] == 1
    assert data["dry_run"] is False
    assert data["stopped"] is False


@pytest.mark.parametrize("days", ["-1", "abc", "0", "1.5", "²", ""])
def test_vxm_prune_refuses_a_bad_number_of_days(db: None, days: str) -> None:
    with pytest.raises(CommandError, match="escribí un número entero mayor que 0, como 400"):
        vxm("--days", days)


def test_vxm_prune_with_bad_days_exits_non_zero_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(VXM), "prune", "--days", "-1"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/nada.sqlite3"},
        timeout=60,
    )
    assert done.returncode == 2
    assert "«-1» no vale: escribí un número entero mayor que 0, como 400." in done.stderr
    assert "Traceback" not in done.stderr


# ----- what the pages show afterwards ------------------------------------------------------


def run_page(client: Any, of: Run) -> str:
    from django.urls import reverse

    response = client.get(reverse("erp:run", args=[of.store.slug, of.pk]))
    assert response.status_code == 200
    return str(response.content.decode())


def test_the_kept_newest_run_says_its_changes_left_the_history_after_pruning(
    admin_client: Any, store: Store, items: list[Item]
) -> None:
    newest = run(store, OLD, stock_changed=0, price_changed=len(items))
    for item in items:
        change(item, OLD - timedelta(minutes=1), run=newest)
    assert "Ácido Cítrico" in run_page(admin_client, newest)

    retention.prune(days=400, now=NOW)

    page = run_page(admin_client, newest)
    assert Run.objects.filter(pk=newest.pk).exists()
    assert "sus cambios ya no están en el historial: se guardan 400 días" in page
    assert "no cambió ningún producto" not in page


def test_a_recent_run_that_changed_nothing_still_says_so(admin_client: Any, store: Store) -> None:
    quiet = run(store, RECENT)
    page = run_page(admin_client, quiet)
    assert "Esta actualización no cambió ningún producto." in page
    assert "ya no están en el historial" not in page


def test_the_run_page_lists_the_changes_left_when_an_item_was_deleted(
    admin_client: Any, store: Store, items: list[Item]
) -> None:
    recent = run(store, RECENT, price_changed=2)
    change(items[0], RECENT - timedelta(minutes=1), run=recent, price="18250.50")
    change(items[3], RECENT - timedelta(minutes=1), run=recent, price="99.90")
    items[0].delete()

    page = run_page(admin_client, recent)

    assert "Ñandú #3, grande" in page
    assert "$ 99,90" in page
    assert "Ácido Cítrico" not in page


@pytest.mark.django_db(transaction=True)
def test_two_passes_at_once_delete_everything_old_once_and_nothing_else(
    store: Store, items: list[Item]
) -> None:
    """Two workers (or a worker and cron) pruning together: every old row goes once,
    no error, nothing newer touched. PostgreSQL only: SQLite allows one writer at a
    time, so there the second simply waits its turn."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises them")
    import threading

    from django.db import connections

    for day in reversed(range(40)):  # written in time order, as the product does
        for item in items:
            change(item, OLD - timedelta(days=day))
    kept = change(items[0], NOW)
    for n in range(30):
        failed = run(store, OLD - timedelta(days=n), status=RunStatus.FAILED)
        issue(failed, f"COD-{n}")
    reports: list[retention.PruneReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def prune() -> None:
        try:
            start.wait()
            reports.append(retention.prune(days=400, batch_size=7, run_batch_size=4, now=NOW))
        except BaseException as e:  # reported by the assertion below
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sum(r.counts["item_changes"] for r in reports) == 40 * len(items)
    assert sum(r.counts["runs"] for r in reports) == 30
    assert sum(r.counts["run_issues"] for r in reports) == 30
    assert list(ItemChange.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not Run.objects.exists()


@pytest.mark.parametrize("days", [0, -5])
def test_a_retention_of_zero_days_is_refused_not_read_as_delete_everything(
    store: Store, items: list[Item], settings: Any, days: int
) -> None:
    settings.VXM_RETENTION_DAYS = days
    change(items[0], NOW - timedelta(hours=1))
    with pytest.raises(CommandError, match="VXM_RETENTION_DAYS tiene que ser un número de días"):
        vxm()
    assert ItemChange.objects.count() == 1


def test_a_row_stamped_much_older_than_when_it_was_written_goes_with_the_rows_after_it(
    store: Store, items: list[Item]
) -> None:
    # The walk ends at the highest id among the newest old rows (read through the
    # time index, not by scanning every newer row); the product writes `at` = now,
    # so only a row stamped out of order can lie beyond it: it goes once a row
    # written after it is old.
    first = change(items[0], OLD)
    newer = change(items[0], NOW)
    stamped_long_ago = change(items[1], OLD - timedelta(days=1000))
    change(items[2], NOW + timedelta(minutes=1))

    retention.prune(days=400, batch_size=1, now=NOW)
    assert newer.pk in set(ItemChange.objects.values_list("pk", flat=True))
    assert ItemChange.objects.filter(pk=stamped_long_ago.pk).exists()
    assert not ItemChange.objects.filter(pk=first.pk).exists()

    retention.prune(days=400, batch_size=1, now=NOW + timedelta(days=401))
    assert not ItemChange.objects.exists()


def test_the_run_page_reads_a_runs_rows_without_joining_or_sorting_runs(
    admin_client: Any, store: Store, items: list[Item]
) -> None:
    from django.test.utils import CaptureQueriesContext

    recent = run(store, RECENT, price_changed=1)
    change(items[0], RECENT, run=recent)
    issue(recent, "SIN-1")
    with CaptureQueriesContext(connection) as queries:
        run_page(admin_client, recent)
    rows = [
        q["sql"]
        for q in queries.captured_queries
        if 'FROM "erp_runissue"' in q["sql"] or 'FROM "catalog_itemchange"' in q["sql"]
    ]
    # No query of the page joins erp_run (the undo box's EXISTS and COUNT of the
    # run's history included); the two that list rows (changes and issues) are
    # ordered by (run_id, id), the index's order.
    assert all('JOIN "erp_run"' not in sql for sql in rows)
    listing = [sql for sql in rows if "ORDER BY" in sql]
    assert len(listing) == 2
    for sql in listing:
        assert '"run_id" ASC' in sql.split("ORDER BY")[1]
