"""Items locked against the ERP: an update leaves them alone, lists them as locked,
and after an unlock a full update brings the ERP's values (docs/sync-correctness.md)."""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.test import Client
from django.urls import reverse

from catalog.locks import set_erp_lock
from catalog.models import ChangeSource, Item, ItemChange
from erp import engine
from erp.engine import execute_run, request_update
from erp.models import IssueKind, Run, RunIssue, RunStatus
from stores.models import Store
from tests.erp.sync_helpers import connect, make_items, sync
from tests.erp.test_pages import text

LOCKED_SKU = "Ñoquis 500 g + 10%"
FREE_SKU = "ACE-0001 #2"


def erp_row(standin: Any, codigo: str, stock: str, price: str, *, age_s: int = 0) -> dict:
    return {
        "codigo": codigo,
        "descripcion": f"Descripción de {codigo.strip()}",
        "stock": stock,
        "precio_mayorista": price,
        "moneda": "ARS",
        "activo": True,
        "modificado": (standin.now() - timedelta(days=1, seconds=-age_s)).isoformat(
            timespec="seconds"
        ),
    }


def lock(store: Store, *skus: str, locked: bool = True) -> None:
    ids = Item.objects.filter(store=store, sku__in=skus).values_list("id", flat=True)
    set_erp_lock(store, ids, locked=locked, actor="admin@sur.test")


def values(store: Store, sku: str) -> tuple[int, Decimal]:
    item = Item.objects.get(store=store, sku=sku)
    return item.stock, item.wholesale_price


def test_a_locked_item_keeps_its_values_through_a_full_update_and_is_listed_as_locked(
    admin_client: Client, store: Store, standin: Any
) -> None:
    connect(store, standin)
    make_items(store, [(LOCKED_SKU, 7, "1234.56"), (FREE_SKU, 1, "10.00")])
    # The ERP spells the codes in its own way: case and spaces are not part of a SKU.
    standin.load(
        [
            erp_row(standin, " ÑOQUIS 500 G + 10% ", "0.000", "99999.00"),
            erp_row(standin, "ace-0001 #2", "340.000", "18250.50"),
        ]
    )
    lock(store, LOCKED_SKU)

    run = sync(store, full=True)

    assert run.status == RunStatus.SUCCEEDED  # a lock is the admin's choice, not a warning
    assert values(store, LOCKED_SKU) == (7, Decimal("1234.56"))
    assert values(store, FREE_SKU) == (340, Decimal("18250.50"))
    assert not ItemChange.objects.filter(run=run, item__sku=LOCKED_SKU).exists()
    assert (run.received, run.matched, run.locked, run.stock_changed, run.price_changed) == (
        2,
        2,
        1,
        1,
        1,
    )
    [issue] = RunIssue.objects.filter(run=run)
    assert (issue.kind, issue.code.strip(), issue.sku) == (
        IssueKind.LOCKED,
        "ÑOQUIS 500 G + 10%",
        LOCKED_SKU,
    )
    # It says what the ERP sent, so the admin can decide whether to unlock it.
    assert "NonSistemas mandó stock 0 y precio $ 99.999,00" in issue.reason
    assert "Desbloquealo y hacé una actualización completa" in issue.reason

    # The run's page counts it and lists it under its own chip; the CSV says it in Spanish.
    page = text(admin_client.get(reverse("erp:run", args=[store.slug, run.pk])))
    assert "1 Bloqueados en la tienda" in page
    assert "Bloqueados en la tienda (1)" in page
    filtered = admin_client.get(reverse("erp:run", args=[store.slug, run.pk]), {"kind": "locked"})
    assert f"Bloqueado en la tienda ÑOQUIS 500 G + 10% {LOCKED_SKU}" in text(filtered)
    response = admin_client.get(
        reverse("erp:run_issues_csv", args=[store.slug, run.pk]), {"kind": "locked"}
    )
    rows = list(csv.reader(io.StringIO(response.getvalue().decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Tipo", "Código ERP", "SKU", "Motivo"]
    assert [(r[0], r[2]) for r in rows[1:]] == [("Bloqueado en la tienda", LOCKED_SKU)]


def test_unlocking_lets_the_next_full_update_bring_the_erps_values(
    store: Store, standin: Any
) -> None:
    connect(store, standin)
    make_items(store, [(LOCKED_SKU, 7, "1234.56")])
    standin.load([erp_row(standin, LOCKED_SKU, "3.000", "2000.00")])
    lock(store, LOCKED_SKU)
    assert sync(store, full=True).locked == 1
    lock(store, LOCKED_SKU, locked=False)

    # An incremental update asks only for what changed in the ERP since the last one:
    # this item did not, so it is not sent again (hence "a full update" in the docs).
    incremental = sync(store)
    assert (incremental.received, incremental.locked) == (0, 0)
    assert values(store, LOCKED_SKU) == (7, Decimal("1234.56"))

    full = sync(store, full=True)
    assert (full.locked, full.stock_changed, full.price_changed) == (0, 1, 1)
    assert values(store, LOCKED_SKU) == (3, Decimal("2000.00"))
    assert list(
        ItemChange.objects.filter(item__sku=LOCKED_SKU)
        .order_by("id")
        .values_list("source", "old_stock", "new_stock")
    ) == [
        (ChangeSource.LOCK, None, None),
        (ChangeSource.UNLOCK, None, None),
        (ChangeSource.ERP, 7, 3),
    ]


def test_an_item_locked_while_an_update_runs_is_skipped_from_the_next_page_on(
    store: Store, standin: Any, settings: Any, monkeypatch: Any
) -> None:
    # R6: the lock is read inside each page's transaction, with the rows it locks.
    # Locked once page 1 was written: page 1's item stays applied, page 2's is left
    # alone.
    settings.VXM_NONSISTEMAS_PAGE_SIZE = 10
    monkeypatch.setattr(engine, "APPLY_ROWS", 1)  # a transaction per page
    connect(store, standin)
    skus = [f"PAG-{i:02d}" for i in range(25)]
    make_items(store, [(sku, 0, "1.00") for sku in skus])
    standin.load([erp_row(standin, sku, "5.000", "2.00", age_s=i) for i, sku in enumerate(skus)])
    on_first_page, on_second_page = "PAG-03", "PAG-13"
    write = engine.PlanWriter.write
    written: list[int] = []

    def lock_after_the_first_page(writer: Any, changes: Any, stats: Any) -> None:
        write(writer, changes, stats)
        written.append(len(changes))
        if len(written) == 1:
            lock(store, on_first_page, on_second_page)

    monkeypatch.setattr(engine.PlanWriter, "write", lock_after_the_first_page)
    queued = request_update(store, full=True, origin="cli", enqueue=False)
    run = execute_run(queued.pk)

    assert run.status == RunStatus.SUCCEEDED and len(written) >= 3
    assert values(store, on_first_page) == (5, Decimal("2.00"))
    assert values(store, on_second_page) == (0, Decimal("1.00"))
    assert run.locked == 1
    assert list(RunIssue.objects.filter(run=run).values_list("kind", "sku")) == [
        (IssueKind.LOCKED, on_second_page)
    ]


def test_an_item_locked_after_the_erp_was_read_and_before_it_is_written_is_left_alone(
    store: Store, standin: Any, settings: Any
) -> None:
    # An update reads the whole ERP first, then writes: a lock taken in between
    # (here, while it reads page 2) keeps the item's values, whichever page named it.
    settings.VXM_NONSISTEMAS_PAGE_SIZE = 10
    connect(store, standin)
    skus = [f"PAG-{i:02d}" for i in range(25)]
    make_items(store, [(sku, 0, "1.00") for sku in skus])
    standin.load([erp_row(standin, sku, "5.000", "2.00", age_s=i) for i, sku in enumerate(skus)])
    pages: list[int] = []

    def lock_after_the_first_page(run: Run, stats: Any) -> None:
        pages.append(run.pk)
        if len(pages) == 1:
            lock(store, "PAG-03", "PAG-13")

    queued = request_update(store, full=True, origin="cli", enqueue=False)
    run = execute_run(queued.pk, progress=lock_after_the_first_page)

    assert run.status == RunStatus.SUCCEEDED and len(pages) >= 3
    assert values(store, "PAG-03") == values(store, "PAG-13") == (0, Decimal("1.00"))
    assert values(store, "PAG-04") == (5, Decimal("2.00"))
    assert run.locked == 2 and run.stock_changed == 23


def test_an_ambiguous_code_stays_ambiguous_even_if_one_of_its_items_is_locked(
    store: Store, standin: Any
) -> None:
    connect(store, standin)
    make_items(store, [("AMB-1", 1, "1.00"), ("amb-1 ", 2, "1.00")])
    standin.load([erp_row(standin, "AMB-1", "9.000", "9.00")])
    lock(store, "AMB-1")
    run = sync(store, full=True)
    assert (run.ambiguous, run.locked) == (1, 0)
    assert values(store, "AMB-1") == (1, Decimal("1.00"))
