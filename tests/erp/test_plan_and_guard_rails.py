"""Every update plans first, then applies (issue #11): previews, guard rails, held
runs applied or discarded later, and cancelling at a page boundary.

All through the real NonSistemas stand-in and the real database; see
docs/sync-correctness.md ("Plan, then apply") for the rules these guard.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from catalog.models import ChangeSource, Item, ItemChange
from erp import engine
from erp.cancel import cancelled_by_label
from erp.engine import (
    UpdateAlreadyRunning,
    apply_held,
    discard_held,
    execute_run,
    request_cancel,
    request_update,
)
from erp.models import (
    AuditAction,
    AuditEvent,
    Connection,
    GuardRails,
    IssueKind,
    PlannedPage,
    Run,
    RunIssue,
    RunMode,
    RunStatus,
)
from stores.models import Store
from tests.erp.sync_helpers import connect, make_items, sync

pytestmark = pytest.mark.django_db(transaction=True)

# SKUs as stores write them: accents, symbols, a stray space; the ERP spells them
# in upper case with spaces around.
SKUS = [f"Yerba Mate Suave 1kg #{i:03d} + 10%" for i in range(120)]


def erp_row(standin: Any, sku: str, stock: int, price: str, *, age_s: int = 0) -> dict:
    return {
        "codigo": f"  {sku.upper()} ",
        "descripcion": f"Descripción de {sku}",
        "stock": f"{stock}.000",
        "precio_mayorista": price,
        "moneda": "ARS",
        "activo": True,
        "modificado": (standin.now() - timedelta(hours=1, seconds=-age_s)).isoformat(
            timespec="seconds"
        ),
    }


def catalog(store: Store) -> dict[str, tuple[int, Decimal]]:
    return {
        sku: (stock, price)
        for sku, stock, price in Item.objects.filter(store=store).values_list(
            "sku", "stock", "wholesale_price"
        )
    }


def planned(run: Run) -> list[list[Any]]:
    return [c for page in PlannedPage.objects.filter(run=run) for c in page.changes]


def run_of(store: Store, *, mode: str = RunMode.UPDATE, full: bool = False) -> Run:
    return execute_run(request_update(store, full=full, origin="cli", enqueue=False, mode=mode).pk)


def watermark(store: Store) -> Any:
    return Connection.objects.get(store=store).watermark


@pytest.fixture
def small_pages(settings: Any) -> None:
    settings.VXM_NONSISTEMAS_PAGE_SIZE = 10


@pytest.fixture
def synced(store: Store, standin: Any) -> Store:
    return in_step(store, standin)


def in_step(store: Store, standin: Any) -> Store:
    """120 items, already in step with the ERP (stock 10, $ 1.500,00): the
    watermark is set, and the next update reads only what changes."""
    connect(store, standin)
    make_items(store, [(sku, 10, "1500.00") for sku in SKUS])
    standin.load([erp_row(standin, sku, 10, "1500.00", age_s=i) for i, sku in enumerate(SKUS)])
    first = sync(store, full=True)
    assert first.status == RunStatus.SUCCEEDED and first.stock_changed == 0
    assert watermark(store) is not None
    return store


def test_a_preview_shows_the_erps_changes_writes_nothing_and_the_next_update_applies_them(
    synced: Store, standin: Any, small_pages: None
) -> None:
    store = synced
    before, mark = catalog(store), watermark(store)
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "7.000"} for sku in SKUS[:100]])

    preview = run_of(store, mode=RunMode.PREVIEW)

    assert (preview.status, preview.mode) == (RunStatus.SUCCEEDED, RunMode.PREVIEW)
    assert sorted(c[1] for c in planned(preview)) == sorted(SKUS[:100])
    assert {(c[2], c[3]) for c in planned(preview)} == {(10, 7)}
    assert preview.stock_changed == 100 and preview.next_watermark is not None
    assert catalog(store) == before
    assert not ItemChange.objects.filter(run=preview).exists()
    assert watermark(store) == mark  # the next update reads those changes again

    update = sync(store)
    assert update.status == RunStatus.SUCCEEDED and update.stock_changed == 100
    changed = ItemChange.objects.filter(run=update, source=ChangeSource.ERP)
    assert sorted(changed.values_list("item__sku", flat=True)) == sorted(SKUS[:100])
    assert {sku for sku, (stock, _) in catalog(store).items() if stock == 7} == set(SKUS[:100])
    assert watermark(store) == update.next_watermark != mark
    assert not PlannedPage.objects.filter(run=update).exists()  # its history says it all


@pytest.mark.guard_rails
def test_an_erp_sending_stock_0_for_most_items_is_held_and_nothing_is_written(
    synced: Store, standin: Any
) -> None:
    store = synced
    before, mark = catalog(store), watermark(store)
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "0.000"} for sku in SKUS[:90]])

    run = sync(store)

    assert run.status == RunStatus.HELD
    [finding] = run.guard_findings
    assert finding["rule"] == "zero_stock"
    assert finding["message"] == "90 de 120 ítems quedarían con stock 0."
    assert len(finding["examples"]) == 5 and "→ 0" in finding["examples"][0]
    assert catalog(store) == before and not ItemChange.objects.filter(run=run).exists()
    assert watermark(store) == mark and run.next_watermark is not None
    assert len(planned(run)) == 90
    # Not active: it blocks no other update.
    assert engine.active_run(store) is None


@pytest.mark.guard_rails
def test_a_discarded_held_run_writes_nothing_and_the_next_update_reads_the_same_changes(
    synced: Store, standin: Any
) -> None:
    store = synced
    before, mark = catalog(store), watermark(store)
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "0.000"} for sku in SKUS[:90]])
    held = sync(store)
    assert held.status == RunStatus.HELD

    discarded = discard_held(held, origin="cli")

    assert discarded.status == RunStatus.DISCARDED and discarded.decided_at is not None
    assert AuditEvent.objects.filter(action=AuditAction.RUN_DISCARDED).count() == 1
    assert catalog(store) == before and watermark(store) == mark
    again = sync(store)
    assert again.status == RunStatus.HELD
    assert again.guard_findings[0]["message"] == "90 de 120 ítems quedarían con stock 0."


@pytest.mark.guard_rails
def test_applying_a_held_run_writes_it_but_leaves_an_item_edited_meanwhile_and_lists_it(
    synced: Store, standin: Any
) -> None:
    store = synced
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "0.000"} for sku in SKUS[:90]])
    held = sync(store)
    assert held.status == RunStatus.HELD
    # While it waits, the admin fixes one item by hand.
    edited = SKUS[3]
    Item.objects.filter(store=store, sku=edited).update(stock=25)

    queued = apply_held(held, origin="cli", enqueue=False)
    assert queued.status == RunStatus.QUEUED
    run = execute_run(held.pk)

    assert run.status == RunStatus.WARNINGS, run.error_message
    after = catalog(store)
    assert after[edited] == (25, Decimal("1500.00"))
    assert {sku for sku, (stock, _) in after.items() if stock == 0} == set(SKUS[:90]) - {edited}
    assert (run.stock_changed, run.changed_meanwhile) == (89, 1)
    [issue] = RunIssue.objects.filter(run=run, kind=IssueKind.CHANGED_MEANWHILE)
    assert issue.sku == edited
    assert "ahora tiene stock 25" in issue.reason and "habría puesto stock 0" in issue.reason
    assert ItemChange.objects.filter(run=run).count() == 89
    assert AuditEvent.objects.filter(action=AuditAction.RUN_APPLIED).count() == 1
    # Nothing moved the watermark meanwhile: it moves now.
    assert watermark(store) == run.next_watermark


@pytest.mark.guard_rails
def test_a_held_run_applied_after_another_update_moved_the_watermark_does_not_move_it_back(
    synced: Store, standin: Any
) -> None:
    store = synced
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "0.000"} for sku in SKUS[:90]])
    held = sync(store)
    assert held.status == RunStatus.HELD
    # The admin turns the rail off, and the next update applies it all.
    GuardRails.objects.create(store=store, zero_stock_on=False)
    standin.advance(60)  # a minute later on the ERP's clock
    later = sync(store)
    assert later.status == RunStatus.SUCCEEDED and later.stock_changed == 90
    moved = watermark(store)
    assert moved == later.next_watermark and held.next_watermark < moved

    run = execute_run(apply_held(held, origin="cli", enqueue=False).pk)

    # Every planned item already holds the ERP's value: none is written twice,
    # none reverted, and the watermark is not moved back to the held run's.
    assert run.status in (RunStatus.SUCCEEDED, RunStatus.WARNINGS)
    assert not ItemChange.objects.filter(run=run).exists()
    assert watermark(store) == moved


@pytest.mark.guard_rails
def test_a_held_run_cannot_be_applied_while_another_update_runs(
    synced: Store, standin: Any
) -> None:
    store = synced
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "0.000"} for sku in SKUS[:90]])
    held = sync(store)
    running = request_update(store, origin="cli", enqueue=False)
    with pytest.raises(UpdateAlreadyRunning) as e:
        apply_held(held, origin="cli", enqueue=False)
    assert e.value.run.pk == running.pk
    assert Run.objects.get(pk=held.pk).status == RunStatus.HELD


@pytest.mark.guard_rails
def test_a_preview_says_what_would_trip_a_guard_rail_but_is_never_held(
    synced: Store, standin: Any
) -> None:
    store = synced
    # Most prices drop by more than half (a typo of a zero in the ERP).
    standin.edit(
        [{"codigo": f"  {sku.upper()} ", "precio_mayorista": "150.00"} for sku in SKUS[:40]]
    )
    preview = run_of(store, mode=RunMode.PREVIEW)
    assert preview.status == RunStatus.SUCCEEDED
    [finding] = preview.guard_findings
    assert finding["rule"] == "price"
    assert finding["message"] == "De 40 precios que cambian, 40 bajarían más de la mitad."
    assert "$ 1.500,00 → $ 150,00" in finding["examples"][0]

    assert sync(store).status == RunStatus.HELD


@pytest.mark.guard_rails
def test_a_full_update_receiving_far_fewer_items_than_the_last_full_one_is_held(
    synced: Store, standin: Any
) -> None:
    store = synced
    standin.load([erp_row(standin, sku, 10, "1500.00") for sku in SKUS[:60]])
    run = sync(store, full=True)
    assert run.status == RunStatus.HELD
    [finding] = run.guard_findings
    assert finding["rule"] == "full_drop"
    assert finding["message"].startswith(
        "El ERP mandó 50 % menos ítems que en la última actualización completa (60 contra 120"
    )


@pytest.mark.guard_rails
def test_guard_rails_turned_off_or_loosened_let_the_update_through(
    synced: Store, standin: Any
) -> None:
    store = synced
    GuardRails.objects.create(store=store, zero_stock_percent=80)
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "0.000"} for sku in SKUS[:90]])
    assert sync(store).status == RunStatus.SUCCEEDED  # 75 % is under 80 %


def test_cancelling_while_the_erp_is_read_writes_nothing_and_keeps_the_watermark(
    synced: Store, standin: Any, small_pages: None
) -> None:
    store = synced
    before, mark = catalog(store), watermark(store)
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "3.000"} for sku in SKUS])
    queued = request_update(store, origin="cli", enqueue=False)
    pages: list[int] = []

    def cancel_after_the_first_page(run: Run, stats: Any) -> None:
        pages.append(run.received)
        if len(pages) == 1:
            assert request_cancel(run, origin="cli")

    run = execute_run(queued.pk, progress=cancel_after_the_first_page)

    assert run.status == RunStatus.CANCELLED
    assert cancelled_by_label(run) == "Línea de comandos"
    assert len(pages) == 1 and PlannedPage.objects.filter(run=run).count() == 1
    assert catalog(store) == before and watermark(store) == mark


def test_cancelling_while_applying_keeps_whole_pages_and_the_watermark(
    synced: Store, standin: Any, small_pages: None, monkeypatch: Any
) -> None:
    store = synced
    mark = watermark(store)
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "3.000"} for sku in SKUS])
    monkeypatch.setattr(engine, "APPLY_ROWS", 1)  # a transaction per page
    write = engine.PlanWriter.write
    written: list[int] = []

    def cancel_after_the_first_page(writer: Any, changes: Any, stats: Any) -> None:
        write(writer, changes, stats)
        written.append(len(changes))
        if len(written) == 1:
            assert request_cancel(writer.run, origin="cli")

    monkeypatch.setattr(engine.PlanWriter, "write", cancel_after_the_first_page)
    run = run_of(store)

    assert run.status == RunStatus.CANCELLED and written == [10]
    # The first page whole (items and history), nothing of the others.
    assert ItemChange.objects.filter(run=run).count() == 10 == run.stock_changed
    assert sum(1 for stock, _ in catalog(store).values() if stock == 3) == 10
    assert watermark(store) == mark
    # The next update reads them all again and finishes the job.
    assert sync(store).stock_changed == 110
    assert all(stock == 3 for stock, _ in catalog(store).values())


def test_a_queued_run_is_cancelled_at_once(synced: Store) -> None:
    queued = request_update(synced, origin="cli", enqueue=False)
    assert request_cancel(queued, origin="cli")
    run = execute_run(queued.pk)  # a worker picking it up later does nothing
    assert run.status == RunStatus.CANCELLED and run.started_at is None
    assert not request_cancel(run, origin="cli")  # nothing left to cancel
