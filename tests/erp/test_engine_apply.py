"""Applying a page of ERP items when the world does not hold still: a store admin
editing the same item, ERP codes that name one store item twice, text that the
database refuses."""

import io
import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from catalog import csv_import
from catalog.models import ChangeSource, Item, ItemChange
from catalog.writes import CatalogWriter
from erp import actions, engine, registry
from erp.engine import Applier, claim, execute_run, request_update
from erp.errors import ErpError
from erp.models import AuditEvent, Run, RunIssue, RunStatus
from erp.sources import ErpItem, FeedStats
from nonsistemas_standin import catalog as standin_catalog
from tests.erp.sync_helpers import connect, make_items, sync

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timezone.now().replace(microsecond=0)


def erp_row(code: str, stock: str, *, seconds: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "codigo": code,
        "descripcion": code,
        "stock": stock,
        "precio_mayorista": "100.00",
        "moneda": "ARS",
        "activo": True,
        "modificado": (NOW - timedelta(minutes=5) + timedelta(seconds=seconds)).isoformat(),
        **extra,
    }


def running_run(store: Any) -> Run:
    run = request_update(store, origin="cli", enqueue=False)
    assert claim(run.pk)
    return Run.objects.get(pk=run.pk)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def waits_for_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        # Activity is snapshotted once per transaction unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cursor.fetchone()[0])


def test_a_manual_edit_committed_while_a_page_is_applied_is_not_reverted(store, standin):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    make_items(store, [("A-1", 3, "10.00")])
    connect(store, standin)
    run = running_run(store)
    # The ERP changes the stock and has no price for the item: the price is the
    # store's, and an admin is changing it right now.
    page = [ErpItem("A-1", Decimal(7), None, "ARS", True, NOW)]
    failures: list[BaseException] = []

    def apply_page() -> None:
        try:
            Applier(run, store).apply(page, FeedStats())
        except BaseException as e:  # reported by the test below
            failures.append(e)
        finally:
            connections.close_all()

    with transaction.atomic():
        # What the item page's manual edit does, held open while the page applies.
        item = Item.objects.select_for_update().get(store=store, sku="A-1")
        item.wholesale_price = Decimal("15.00")
        item.save(update_fields=["wholesale_price"])
        worker = threading.Thread(target=apply_page)
        worker.start()
        wait_until(waits_for_a_lock, "the update waits for the admin's edit")
    worker.join()

    assert not failures
    item = Item.objects.get(store=store, sku="A-1")
    assert (item.stock, item.wholesale_price) == (7, Decimal("15.00"))
    erp_change = ItemChange.objects.get(item=item, source=ChangeSource.ERP)
    assert (erp_change.old_stock, erp_change.new_stock) == (3, 7)
    assert erp_change.new_price is None  # the ERP did not touch the price


def test_two_erp_codes_naming_one_store_item_on_one_page_leave_the_later_ones_values(
    store, standin
):
    make_items(store, [("DUP-1", 1, "10.00")])
    connect(store, standin)
    standin.load(
        [
            erp_row("DUP-1", "20.000", seconds=1, precio_mayorista="200.00"),
            erp_row(" dup-1", "30.000", seconds=2, precio_mayorista="300.00"),
        ]
    )
    run = sync(store)
    assert run.status == RunStatus.SUCCEEDED
    item = Item.objects.get(store=store, sku="DUP-1")
    # The later change (by modificado) wins, as it would on separate pages.
    assert (item.stock, item.wholesale_price) == (30, Decimal("300.00"))
    # The history tells both, each from the values the other left.
    history = list(
        ItemChange.objects.filter(item=item).order_by("pk").values_list("old_stock", "new_stock")
    )
    assert history == [(1, 20), (20, 30)]


def test_a_currency_with_a_nul_character_rejects_the_price_and_the_run_succeeds(store, standin):
    make_items(store, [("OK-1", 1, "10.00")])
    connect(store, standin)
    standin.load([erp_row("OK-1", "5.000", moneda="AR\x00S")])
    run = sync(store)
    assert run.status == RunStatus.WARNINGS
    assert Item.objects.get(store=store, sku="OK-1").stock == 5
    issue = RunIssue.objects.get(run=run)
    assert issue.kind == "price_rejected" and "AR\ufffdS" in issue.reason


def test_a_version_with_a_nul_character_still_verifies(store, standin):
    connect(store, standin)
    standin.configure(version="4.3.1\x00")
    outcome = actions.verify_connection(store)
    assert outcome.ok
    assert (
        AuditEvent.objects.filter(store=store)
        .latest("pk")
        .detail.startswith("Correcta: NonSistemas 4.3.1")
    )


@pytest.mark.parametrize(
    "code, shown",
    [("MAL\x00O", "MAL\ufffdO"), ("MAL\ud800", "MAL\ufffd")],
    ids=["nul", "lone-surrogate"],
)
def test_a_code_no_database_can_store_is_unmatched_and_the_runs_succeed(
    store, standin, monkeypatch, code, shown
):
    # Many JSON encoders (Java, PHP, Python's default) escape non-ASCII text:
    # "\u0000" and a lone "\ud800" are valid JSON that no database can store.
    monkeypatch.setattr(standin_catalog, "_json_string", lambda text: json.dumps(text))
    make_items(store, [("OK-1", 1, "10.00")])
    connect(store, standin)
    standin.load([erp_row("OK-1", "5.000"), erp_row(code, "5.000", seconds=1)])
    run = sync(store)
    assert run.status == RunStatus.SUCCEEDED
    assert Item.objects.get(store=store, sku="OK-1").stock == 5
    assert RunIssue.objects.get(run=run).code == shown
    assert sync(store).status == RunStatus.SUCCEEDED  # and the next run too


def test_a_discontinued_item_with_unreadable_stock_gets_stock_zero(store, standin):
    make_items(store, [("OLD-1", 12, "10.00")])
    connect(store, standin)
    run = running_run(store)
    page = [ErpItem("OLD-1", None, Decimal("10.00"), "ARS", False, NOW, stock_raw="—")]
    Applier(run, store).apply(page, FeedStats())
    assert Item.objects.get(store=store, sku="OLD-1").stock == 0
    run.refresh_from_db()
    assert (run.stock_changed, run.invalid) == (1, 0)
    assert RunIssue.objects.get(run=run).kind == "discontinued"


class FailingSource:
    def __init__(self, error: ErpError) -> None:
        self.error = error

    def feed(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    def close(self) -> None:
        pass


def test_a_failure_the_database_cannot_store_as_is_still_ends_the_run(store, standin, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce the length of a text column")
    connect(store, standin)
    # A code longer than its column: the run's outcome cannot be written as is.
    error = ErpError("x" * 100, "Algo falló.")
    monkeypatch.setattr(registry, "source_for", lambda connection: FailingSource(error))
    run = request_update(store, origin="cli", enqueue=False)
    run = execute_run(run.pk)
    assert run.status == RunStatus.FAILED
    assert run.finished_at is not None
    assert "no se pudo guardar" in run.error_message


def test_a_failure_between_the_items_and_their_history_writes_neither(
    store, standin, monkeypatch, settings
):
    # R5: a page's items, their history rows and the run's counters commit together.
    # The history of the second page fails to be written (as a worker killed right
    # after updating the items would leave it): its items must not change either.
    settings.VXM_NONSISTEMAS_PAGE_SIZE = 10
    make_items(store, [(f"TX-{i:02d}", 0, "1.00") for i in range(25)])
    connect(store, standin)
    standin.load([erp_row(f"TX-{i:02d}", f"{i + 1}.000", seconds=i) for i in range(25)])
    add_history = CatalogWriter.add_history
    calls: list[int] = []

    def fails_on_the_second_page(writer: CatalogWriter, changes: Any) -> None:
        calls.append(len(changes))
        if len(calls) == 2:
            raise DatabaseError("the connection was lost")
        add_history(writer, changes)

    monkeypatch.setattr(CatalogWriter, "add_history", fails_on_the_second_page)
    # One page per transaction (the apply groups several when they are small).
    monkeypatch.setattr(engine, "APPLY_ROWS", 1)
    run = sync(store)
    assert run.status == RunStatus.FAILED
    changed = set(Item.objects.filter(store=store, stock__gt=0).values_list("id", flat=True))
    with_history = set(
        ItemChange.objects.filter(source=ChangeSource.ERP).values_list("item", flat=True)
    )
    assert len(changed) == 10  # the first page only
    assert changed == with_history
    # All 25 were matched when planning; 10 changes were written.
    assert Run.objects.get(pk=run.pk).stock_changed == 10


def test_an_erp_page_waits_for_a_csv_import_of_the_same_store_and_neither_fails(
    store, standin, monkeypatch
):
    # R6: the store's bulk-write lock. A CSV import locks its rows chunk by chunk;
    # an ERP page touching rows of two of its chunks would otherwise lock some,
    # wait for the others, and deadlock with the import's next chunk.
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    early = [f"A-{i:02d}" for i in range(5)]  # first in the table and in the key order
    late = [f"Z-{i:02d}" for i in range(5)]
    make_items(store, [(sku, 1, "1.00") for sku in early + late])
    connect(store, standin)
    run = running_run(store)
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 5)
    first_chunk_written, go_on = threading.Event(), threading.Event()
    apply_chunk = csv_import._apply_chunk

    def pausing_after_the_first_chunk(*args: Any, **kwargs: Any) -> None:
        apply_chunk(*args, **kwargs)
        if not first_chunk_written.is_set():
            first_chunk_written.set()
            go_on.wait(timeout=60)

    monkeypatch.setattr(csv_import, "_apply_chunk", pausing_after_the_first_chunk)
    # The file's first chunk is the Z items, its second the A items.
    csv = "sku,name,stock,wholesale_price\n" + "".join(
        f"{sku},Ítem {sku},2,2.00\n" for sku in late + early
    )
    failures: list[BaseException] = []
    reports: list[Any] = []

    def in_a_thread(work: Callable[[], Any]) -> threading.Thread:
        def run_it() -> None:
            try:
                reports.append(work())
            except BaseException as e:  # reported by the test below
                failures.append(e)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run_it)
        thread.start()
        return thread

    importer = in_a_thread(
        lambda: csv_import.import_csv(store, io.BytesIO(csv.encode()), actor="CSV")
    )
    assert first_chunk_written.wait(timeout=60)
    page = [ErpItem(sku, Decimal(3), Decimal("3.00"), "ARS", True, NOW) for sku in early + late]
    updater = in_a_thread(lambda: Applier(run, store).apply(page, FeedStats()))
    wait_until(waits_for_a_lock, "the ERP page waits for the import")
    go_on.set()
    importer.join()
    updater.join()

    assert not failures
    # The page applied after the whole import, on top of it.
    for item in Item.objects.filter(store=store):
        assert (item.stock, item.wholesale_price) == (3, Decimal("3.00"))
        steps = list(item.changes.order_by("pk").values_list("source", "old_stock", "new_stock"))
        assert steps == [(ChangeSource.CSV, 1, 2), (ChangeSource.ERP, 2, 3)]


def test_an_item_with_unreadable_stock_is_reported_and_the_rest_of_its_page_applied(store, standin):
    # R7: one unreadable value skips that item only; the page is not failed on it
    # (a run would fail the same way every time, and the watermark never move).
    make_items(store, [("Azúcar 1kg", 1, "10.00"), ("YER-0001", 1, "10.00")])
    connect(store, standin)
    run = running_run(store)
    page = [
        ErpItem("AZÚCAR 1KG", None, Decimal("5.00"), "ARS", True, NOW, stock_raw="muchos"),
        ErpItem(" yer-0001 ", Decimal("12.000"), Decimal("1234.56"), "ARS", True, NOW),
    ]
    Applier(run, store).apply(page, FeedStats())
    run.refresh_from_db()
    assert (run.invalid, run.stock_changed, run.price_changed) == (1, 1, 1)
    [issue] = RunIssue.objects.filter(run=run)
    assert issue.code == "AZÚCAR 1KG" and "«muchos»" in issue.reason
    sugar = Item.objects.get(store=store, sku="Azúcar 1kg")
    assert (sugar.stock, sugar.wholesale_price) == (1, Decimal("10.00"))
    yerba = Item.objects.get(store=store, sku="YER-0001")
    assert (yerba.stock, yerba.wholesale_price) == (12, Decimal("1234.56"))
