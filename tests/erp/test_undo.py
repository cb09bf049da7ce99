"""Undoing an update (issue #11, item 3; docs/sync-correctness.md, U1): the stock
and price each item had before the run come back for every item that still has
the run's values; items changed since are left alone and listed."""

import io
import json
import os
import signal
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from catalog.csv_import import import_csv
from catalog.locks import set_erp_lock
from catalog.models import ChangeSource, Item, ItemChange
from catalog.writes import CatalogWriter
from erp import engine, undo
from erp.models import (
    AuditAction,
    AuditEvent,
    Connection,
    IssueKind,
    Run,
    RunIssue,
    RunMode,
    RunStatus,
)
from stores.models import Membership, Store
from tests.conftest import TEST_PASSWORD
from tests.erp.sync_helpers import connect, make_items, sync
from tests.erp.test_pages import shown_messages, text

IMMEDIATE = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

# Realistic SKUs: stray spaces in the ERP, mixed case, accents, + % # and commas.
NAMES = ["Azúcar Ledesma 1 kg", "Yerba Playadito 500 g", "Aceite Cañuelas 1,5 l", "Ñoquis"]


def sku_of(n: int) -> str:
    return f"{NAMES[n % len(NAMES)].split()[0].upper()}-{n:03d} #{n % 7}+{n % 3}%"


def erp_row(standin: Any, codigo: str, stock: str, price: str) -> dict[str, Any]:
    return {
        "codigo": codigo,
        "descripcion": f"Descripción de {codigo.strip()}",
        "stock": stock,
        "precio_mayorista": price,
        "moneda": "ARS",
        "activo": True,
        "modificado": (standin.now() - timedelta(days=1)).isoformat(timespec="seconds"),
    }


def values(store: Store, sku: str) -> tuple[int, Decimal]:
    item = Item.objects.get(store=store, sku=sku)
    return item.stock, item.wholesale_price


def fifty_prices(store: Store, standin: Any) -> tuple[list[str], Run]:
    """50 items whose price an update raises (the stock stays); returns their SKUs
    and the update."""
    connect(store, standin)
    skus = [sku_of(n) for n in range(50)]
    make_items(
        store,
        [(sku, 10 + n, f"{1000 + n}.50") for n, sku in enumerate(skus)],
        names={sku: f"{NAMES[n % 4]} x {n}" for n, sku in enumerate(skus)},
    )
    # The ERP spells each code its own way: lower case and stray spaces.
    standin.load(
        [
            erp_row(standin, f"  {sku.lower()} ", f"{10 + n}.000", f"{2000 + n}.00")
            for n, sku in enumerate(skus)
        ]
    )
    run = sync(store, full=True)
    assert (run.status, run.price_changed, run.stock_changed) == (RunStatus.SUCCEEDED, 50, 0)
    return skus, run


def undo_from_panel(client: Client, store: Store, run: Run, capture: Any) -> Any:
    with capture(execute=True):
        return client.post(reverse("erp:run_undo", args=[store.slug, run.pk]), follow=True)


# ---- the issue's "done when" -------------------------------------------------------------


def test_undo_of_an_update_of_50_prices_after_a_hand_edit_restores_49_and_lists_1(
    admin_client: Client,
    admin_user: Any,
    store: Store,
    standin: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.TASKS = IMMEDIATE
    skus, update = fifty_prices(store, standin)
    watermark = Connection.objects.get(store=store).watermark
    edited = skus[17]
    item = Item.objects.get(store=store, sku=edited)
    # The admin edits one of those prices by hand on the item page.
    response = admin_client.post(
        reverse("catalog:item", args=[store.slug, item.pk]),
        {
            "stock": "27",
            "wholesale_price": "2222,22",
            "seen_stock": "27",
            "seen_price": "2017.00",
        },
    )
    assert response.status_code == 302
    assert values(store, edited) == (27, Decimal("2222.22"))

    page = text(admin_client.get(reverse("erp:run", args=[store.slug, update.pk])))
    assert "Deshacer esta actualización" in page
    assert "Se van a volver a poner los valores de antes en 50 productos" in page

    response = undo_from_panel(admin_client, store, update, django_capture_on_commit_callbacks)

    undo_run = Run.objects.get(mode=RunMode.UNDO)
    assert response.redirect_chain[-1][0] == reverse("erp:run", args=[store.slug, undo_run.pk])
    assert (undo_run.undoes_id, undo_run.status, undo_run.origin) == (
        update.pk,
        RunStatus.WARNINGS,
        "panel",
    )
    assert (undo_run.matched, undo_run.price_changed, undo_run.stock_changed) == (50, 49, 0)
    assert undo_run.changed_meanwhile == 1
    for n, sku in enumerate(skus):
        if sku != edited:
            assert values(store, sku) == (10 + n, Decimal(f"{1000 + n}.50")), sku
    assert values(store, edited) == (27, Decimal("2222.22"))
    [issue] = RunIssue.objects.filter(run=undo_run)
    assert (issue.kind, issue.sku) == (IssueKind.CHANGED_MEANWHILE, edited)
    assert issue.reason == (
        "Cambió después de la actualización: ahora tiene stock 27 / precio $ 2.222,22; "
        "se dejó como está."
    )
    # The history says who put each price back, under the undo's own source.
    restored = ItemChange.objects.filter(run=undo_run)
    assert restored.count() == 49
    assert set(restored.values_list("source", "user", "actor")) == {
        (ChangeSource.UNDO, admin_user.pk, "admin@sur.test")
    }
    first = restored.get(item__sku=skus[0])
    assert (first.old_price, first.new_price, first.old_stock, first.new_stock) == (
        Decimal("2000.00"),
        Decimal("1000.50"),
        None,
        None,
    )
    # The audit log records who asked; the watermark did not move.
    event = AuditEvent.objects.get(action=AuditAction.UNDO_REQUESTED)
    assert (event.user, event.actor) == (admin_user, "admin@sur.test")
    assert f"#{update.pk}" in event.detail
    assert Connection.objects.get(store=store).watermark == watermark

    # The undo's page: what it undid (a link), what it did, what it left alone.
    assert shown_messages(response) == [
        (
            "success",
            f"Deshaciendo la actualización #{update.pk}: corre en segundo plano, podés salir "
            "de esta página.",
        )
    ]
    response = admin_client.get(reverse("erp:run", args=[store.slug, undo_run.pk]))
    page = text(response)
    assert f"Deshace la actualización #{update.pk}" in page
    assert "Volvió a poner los valores de antes en 49 productos (stocks: 0, precios: 49)." in page
    assert "1 producto cambió después de la actualización y se dejó como está." in page
    assert (
        "Deshacer no cambia nada en NonSistemas: la próxima actualización completa vuelve "
        "a traer sus valores."
    ) in page
    body = response.content.decode()
    assert f'href="{reverse("erp:run", args=[store.slug, update.pk])}"' in body
    # The undone run's page says by which, and offers no second undo.
    page = text(admin_client.get(reverse("erp:run", args=[store.slug, update.pk])))
    assert f"Deshecha por #{undo_run.pk} ." in page  # a link, then the stop
    assert "Deshacer esta actualización" not in page
    # The history of runs lists it, saying what it undoes.
    runs_page = text(admin_client.get(reverse("erp:runs", args=[store.slug])))
    assert f"#{undo_run.pk} deshace #{update.pk}" in runs_page
    # The item page shows the row with its source and the run it undid.
    item_page = text(admin_client.get(reverse("catalog:item", args=[store.slug, first.item_id])))
    assert f"Deshacer actualización #{update.pk} admin@sur.test" in item_page


def test_undo_from_the_command_line_prints_a_json_summary_and_undoes(
    store: Store, standin: Any
) -> None:
    skus, update = fifty_prices(store, standin)
    out = io.StringIO()

    call_command("erp", "undo", store.slug, str(update.pk), "--json", stdout=out)

    summary = json.loads(out.getvalue())
    undo_run = Run.objects.get(mode=RunMode.UNDO)
    assert (summary["id"], summary["status"], summary["undoes"], summary["mode"]) == (
        undo_run.pk,
        "succeeded",
        update.pk,
        "undo",
    )
    assert summary["counts"]["price_changed"] == 50
    assert summary["counts"]["changed_meanwhile"] == 0
    assert summary["requested_by"] == "Línea de comandos"
    assert values(store, skus[3]) == (13, Decimal("1003.50"))
    event = AuditEvent.objects.get(action=AuditAction.UNDO_REQUESTED)
    assert event.actor == "Línea de comandos"
    # It is listed like a run.
    listed = io.StringIO()
    call_command("erp", "runs", store.slug, "--json", stdout=listed)
    assert [r["id"] for r in json.loads(listed.getvalue())] == [undo_run.pk, update.pk]


def test_undo_from_the_command_line_lists_what_it_left_alone(store: Store, standin: Any) -> None:
    skus, update = fifty_prices(store, standin)
    Item.objects.filter(store=store, sku=skus[0]).update(wholesale_price=Decimal("3.00"))
    out = io.StringIO()

    call_command("erp", "undo", store.slug, str(update.pk), stdout=out)

    printed = out.getvalue()
    assert f"deshace la actualización #{update.pk}): Completada con avisos" in printed
    assert "precios vueltos atrás: 49" in printed
    assert (
        f"{skus[0]}: Cambió después de la actualización: ahora tiene stock 10 / precio $ 3,00"
        in printed
    )
    assert "Deshacer no cambia nada en NonSistemas" in printed


# ---- what is restored ----------------------------------------------------------------------


def test_an_item_changed_twice_by_one_run_goes_back_to_its_value_before_the_run(
    store: Store, standin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One history row per page: the item's two rows fall on two pages of the undo.
    monkeypatch.setattr(undo, "PAGE_ROWS", 1)
    connect(store, standin)
    make_items(store, [("Yerba Mate 1kg", 5, "100.00"), ("ACE-1", 1, "1.00")])
    # Two ERP codes name the one store item: the run writes it twice.
    standin.load(
        [
            erp_row(standin, "Yerba Mate 1kg", "10.000", "200.00"),
            erp_row(standin, " YERBA MATE 1KG ", "20.000", "300.00"),
            erp_row(standin, "ace-1", "1.000", "7.00"),
        ]
    )
    update = sync(store, full=True)
    assert ItemChange.objects.filter(run=update, item__sku="Yerba Mate 1kg").count() == 2
    # Whichever the ERP sent last is what the run left.
    assert values(store, "Yerba Mate 1kg") in [(10, Decimal("200.00")), (20, Decimal("300.00"))]
    stock_then, price_then = values(store, "Yerba Mate 1kg")

    call_command("erp", "undo", store.slug, str(update.pk), stdout=io.StringIO())

    assert values(store, "Yerba Mate 1kg") == (5, Decimal("100.00"))
    assert values(store, "ACE-1") == (1, Decimal("1.00"))
    undo_run = Run.objects.get(mode=RunMode.UNDO)
    assert (undo_run.matched, undo_run.stock_changed, undo_run.price_changed) == (2, 1, 2)
    change = ItemChange.objects.get(run=undo_run, item__sku="Yerba Mate 1kg")
    assert (change.old_stock, change.new_stock, change.old_price, change.new_price) == (
        stock_then,
        5,
        price_then,
        Decimal("100.00"),
    )


def test_lock_rows_are_ignored_a_locked_item_is_restored_and_a_csv_import_after_the_run_is_left(
    store: Store, standin: Any
) -> None:
    connect(store, standin)
    make_items(store, [("Ñoquis 500 g + 10%", 7, "50.00"), ("FID-0002, larga", 3, "80.00")])
    standin.load(
        [
            erp_row(standin, "ñoquis 500 g + 10%", "9.000", "55.00"),
            erp_row(standin, "fid-0002, larga ", "4.000", "88.00"),
        ]
    )
    update = sync(store, full=True)
    noquis = Item.objects.get(store=store, sku="Ñoquis 500 g + 10%")
    # Locked and unlocked and locked again after the run: history rows with no stock
    # or price, which the undo does not read; the lock is against the ERP only.
    set_erp_lock(store, [noquis.pk], locked=True, actor="admin@sur.test")
    set_erp_lock(store, [noquis.pk], locked=False, actor="admin@sur.test")
    set_erp_lock(store, [noquis.pk], locked=True, actor="admin@sur.test")
    # A CSV import changes the other item's stock after the run.
    report = import_csv(
        store,
        io.BytesIO(b'sku,name,stock,wholesale_price\n"FID-0002, larga",Fideos,12,88.00\n'),
        actor="admin@sur.test",
    )
    assert report.applied

    call_command("erp", "undo", store.slug, str(update.pk), stdout=io.StringIO())

    assert values(store, "Ñoquis 500 g + 10%") == (7, Decimal("50.00"))
    assert Item.objects.get(pk=noquis.pk).erp_locked  # still locked
    assert values(store, "FID-0002, larga") == (12, Decimal("88.00"))
    undo_run = Run.objects.get(mode=RunMode.UNDO)
    assert (undo_run.matched, undo_run.changed_meanwhile, undo_run.status) == (
        2,
        1,
        RunStatus.WARNINGS,
    )
    [issue] = RunIssue.objects.filter(run=undo_run)
    assert issue.sku == "FID-0002, larga"
    assert "ahora tiene stock 12 / precio $ 88,00" in issue.reason


def test_an_item_already_back_at_its_values_is_counted_unchanged_and_not_written(
    store: Store, standin: Any
) -> None:
    skus, update = fifty_prices(store, standin)
    Item.objects.filter(store=store, sku=skus[0]).update(wholesale_price=Decimal("1000.50"))

    call_command("erp", "undo", store.slug, str(update.pk), stdout=io.StringIO())

    undo_run = Run.objects.get(mode=RunMode.UNDO)
    assert (undo_run.unchanged, undo_run.price_changed, undo_run.changed_meanwhile) == (1, 49, 0)
    assert not ItemChange.objects.filter(run=undo_run, item__sku=skus[0]).exists()


# ---- what cannot be undone ---------------------------------------------------------------


def cli_undo(store: Store, run_id: int) -> CommandError:
    with pytest.raises(CommandError) as refused:
        call_command("erp", "undo", store.slug, str(run_id), stdout=io.StringIO())
    return refused.value


def test_undo_twice_is_refused_saying_which_undid_it(
    admin_client: Client,
    store: Store,
    standin: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.TASKS = IMMEDIATE
    skus, update = fifty_prices(store, standin)
    call_command("erp", "undo", store.slug, str(update.pk), stdout=io.StringIO())
    first = Run.objects.get(mode=RunMode.UNDO)
    Item.objects.filter(store=store, sku=skus[0]).update(wholesale_price=Decimal("2000.00"))

    error = cli_undo(store, update.pk)
    assert str(error) == (
        f"No se puede deshacer la actualización #{update.pk}: Ya se deshizo en #{first.pk}."
    )
    assert error.returncode == 1
    response = undo_from_panel(admin_client, store, update, django_capture_on_commit_callbacks)
    assert ("error", str(error)) in shown_messages(response)
    assert Run.objects.filter(mode=RunMode.UNDO).count() == 1
    assert values(store, skus[0])[1] == Decimal("2000.00")
    # An undo is not undone either.
    assert "Esto ya es un «Deshacer» y no se deshace." in str(cli_undo(store, first.pk))


def test_undo_of_a_preview_or_a_held_run_is_refused(store: Store, standin: Any) -> None:
    connect(store, standin)
    preview = Run.objects.create(
        store=store, kind="nonsistemas", mode=RunMode.PREVIEW, status=RunStatus.SUCCEEDED
    )
    held = Run.objects.create(store=store, kind="nonsistemas", status=RunStatus.HELD)

    assert "Es una vista previa: no cambió nada en la tienda" in str(cli_undo(store, preview.pk))
    assert "Está retenida: todavía no cambió nada." in str(cli_undo(store, held.pk))
    assert not Run.objects.filter(mode=RunMode.UNDO).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.UNDO_REQUESTED).exists()


def test_undo_while_another_run_is_active_is_refused(
    admin_client: Client,
    store: Store,
    standin: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, update = fifty_prices(store, standin)
    busy = Run.objects.create(store=store, kind="nonsistemas", status=RunStatus.QUEUED)

    error = cli_undo(store, update.pk)
    assert str(error) == f"Hay una actualización en curso (#{busy.pk}); esperá a que termine."
    assert error.returncode == 3
    response = undo_from_panel(admin_client, store, update, django_capture_on_commit_callbacks)
    assert ("error", str(error)) in shown_messages(response)
    assert not Run.objects.filter(mode=RunMode.UNDO).exists()


def test_another_stores_run_is_404_on_the_page_and_an_error_in_the_cli(
    admin_client: Client, store: Store, other_store: Store, standin: Any
) -> None:
    connect(other_store, standin)
    make_items(other_store, [("ACE-1", 1, "1.00")])
    standin.load([erp_row(standin, "ACE-1", "5.000", "9.00")])
    theirs = sync(other_store, full=True)

    response = admin_client.post(reverse("erp:run_undo", args=[store.slug, theirs.pk]))
    assert response.status_code == 404
    error = cli_undo(store, theirs.pk)
    assert str(error) == f"La tienda {store.slug} no tiene una actualización #{theirs.pk}."
    assert not Run.objects.filter(mode=RunMode.UNDO).exists()
    assert values(other_store, "ACE-1") == (5, Decimal("9.00"))


def test_a_user_who_does_not_administer_the_store_cannot_undo(
    store: Store, other_store: Store, standin: Any
) -> None:
    _, update = fifty_prices(store, standin)
    stranger = get_user_model().objects.create_user(
        username="otro@norte.test", email="otro@norte.test", password=TEST_PASSWORD
    )
    Membership.objects.create(store=other_store, user=stranger)
    client = Client()
    client.force_login(stranger)

    response = client.post(reverse("erp:run_undo", args=[store.slug, update.pk]))

    assert response.status_code == 404
    assert not Run.objects.filter(mode=RunMode.UNDO).exists()
    anonymous = Client().post(reverse("erp:run_undo", args=[store.slug, update.pk]))
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    assert not Run.objects.filter(mode=RunMode.UNDO).exists()


def test_an_undo_asked_by_someone_who_left_the_store_does_not_run(
    admin_user: Any, store: Store, standin: Any
) -> None:
    skus, update = fifty_prices(store, standin)
    queued = undo.request_undo(store, update.pk, user=admin_user, enqueue=False)
    Membership.objects.filter(user=admin_user).delete()

    done = undo.execute_undo(queued.pk)

    assert (done.status, done.error_message) == (
        RunStatus.FAILED,
        "Quien pidió deshacer la actualización ya no administra esta tienda.",
    )
    assert values(store, skus[0])[1] == Decimal("2000.00")


# ---- whole pages ---------------------------------------------------------------------------


def test_a_failure_on_the_second_page_leaves_the_first_whole_and_a_second_undo_finishes(
    store: Store, standin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    skus, update = fifty_prices(store, standin)
    monkeypatch.setattr(undo, "PAGE_ROWS", 20)
    real = CatalogWriter.add_history
    calls = {"n": 0}

    def failing_on_the_second_page(self: CatalogWriter, changes: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        real(self, changes)

    monkeypatch.setattr(CatalogWriter, "add_history", failing_on_the_second_page)

    with pytest.raises(CommandError) as failed:
        call_command("erp", "undo", store.slug, str(update.pk), stdout=io.StringIO())

    assert "falló (internal)" in str(failed.value)
    first = Run.objects.get(mode=RunMode.UNDO)
    assert (first.status, first.price_changed) == (RunStatus.FAILED, 20)
    # The first page (the run's first 20 history rows) is back, with its history;
    # nothing of the second: neither its prices nor its history rows.
    order = list(
        ItemChange.objects.filter(run=update).order_by("id").values_list("item__sku", flat=True)
    )
    back = [values(store, sku)[1] for sku in order]
    assert [price for price in back if price < 2000] == back[:20]
    assert all(price >= 2000 for price in back[20:])
    assert ItemChange.objects.filter(run=first).count() == 20

    monkeypatch.setattr(CatalogWriter, "add_history", real)
    call_command("erp", "undo", store.slug, str(update.pk), stdout=io.StringIO())

    second = Run.objects.filter(mode=RunMode.UNDO).latest("id")
    assert (second.status, second.price_changed, second.unchanged) == (
        RunStatus.SUCCEEDED,
        30,
        20,
    )
    for n, sku in enumerate(skus):
        assert values(store, sku) == (10 + n, Decimal(f"{1000 + n}.50"))


def test_sigterm_stops_an_undo_between_pages_as_interrupted(
    store: Store, standin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, update = fifty_prices(store, standin)
    monkeypatch.setattr(undo, "PAGE_ROWS", 20)
    real = undo._apply_page

    def then_sigterm(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        # A deploy: the process is asked to end while it works.
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(undo, "_apply_page", then_sigterm)

    with pytest.raises(CommandError) as stopped:
        call_command("erp", "undo", store.slug, str(update.pk), stdout=io.StringIO())

    assert stopped.value.returncode == 128 + signal.SIGTERM
    assert "detenido (SIGTERM)" in str(stopped.value)
    interrupted = Run.objects.get(mode=RunMode.UNDO)
    assert (interrupted.status, interrupted.error_code, interrupted.price_changed) == (
        RunStatus.FAILED,
        "interrupted",
        20,
    )
    assert "pedí «Deshacer» de nuevo" in interrupted.error_message
    assert ItemChange.objects.filter(run=interrupted).count() == 20
    # Not "already undone": it can be asked again.
    assert undo.refusal(update) == ""


def test_an_undo_declared_dead_while_it_writes_a_page_rolls_that_page_back(
    store: Store, standin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, update = fifty_prices(store, standin)
    monkeypatch.setattr(undo, "PAGE_ROWS", 20)
    queued = undo.request_undo(store, update.pk, origin="cli", enqueue=False)
    real = CatalogWriter.add_history
    calls = {"n": 0}

    def declared_dead_during_the_second_page(self: CatalogWriter, changes: Any) -> None:
        real(self, changes)
        calls["n"] += 1
        if calls["n"] == 2:
            # What expire_stale_runs does to a run whose heartbeat got too old.
            Run.objects.filter(pk=queued.pk).update(status=RunStatus.FAILED)

    monkeypatch.setattr(CatalogWriter, "add_history", declared_dead_during_the_second_page)

    done = undo.execute_undo(queued.pk)

    assert done.status == RunStatus.FAILED
    # The first page stays; nothing of the second, which found the undo dead.
    assert ItemChange.objects.filter(run=queued).count() == 20
    assert Item.objects.filter(store=store, wholesale_price__lt=2000).count() == 20


def test_a_failed_updates_applied_pages_are_undone_and_the_erp_page_still_says_it_failed(
    admin_client: Client, store: Store, standin: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.VXM_NONSISTEMAS_PAGE_SIZE = 10
    connect(store, standin)
    skus = [sku_of(n) for n in range(50)]
    make_items(store, [(sku, 10, "1000.00") for sku in skus])
    standin.load([erp_row(standin, sku, "10.000", "2000.00") for sku in skus])
    # An update reads the whole ERP before it writes (a failure while reading
    # leaves nothing to undo), then applies its pages, here one per transaction:
    # two get in, then a deploy stops the process and the run ends failed.
    monkeypatch.setattr(engine, "APPLY_ROWS", 1)
    write = engine.PlanWriter.write
    applied: list[int] = []

    def then_sigterm_after_the_second_page(writer: Any, changes: Any, stats: Any) -> None:
        write(writer, changes, stats)
        applied.append(len(changes))
        if len(applied) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(engine.PlanWriter, "write", then_sigterm_after_the_second_page)
    failed = sync(store, full=True)
    assert (failed.status, failed.error_code) == (RunStatus.FAILED, "interrupted")
    # Two whole pages written (each item with its history row), the rest not.
    written = sum(applied)
    assert len(applied) == 2 and 0 < written < 50
    assert failed.price_changed == written == ItemChange.objects.filter(run=failed).count()
    assert Item.objects.filter(store=store, wholesale_price=Decimal("2000.00")).count() == written

    call_command("erp", "undo", store.slug, str(failed.pk), stdout=io.StringIO())

    assert Run.objects.get(mode=RunMode.UNDO).price_changed == failed.price_changed
    assert {values(store, sku)[1] for sku in skus} == {Decimal("1000.00")}
    # The undo (succeeded) never talked to the ERP: the card still says the last
    # update failed, not "Conectado".
    page = text(admin_client.get(reverse("erp:integrations", args=[store.slug])))
    assert "Necesita atención" in page


def test_an_undo_queued_just_as_another_finished_does_nothing_and_says_so(
    store: Store, standin: Any
) -> None:
    _, update = fifty_prices(store, standin)
    # Both asked before either ran (the second one's check saw no finished undo).
    first = undo.request_undo(store, update.pk, origin="cli", enqueue=False)
    undo.execute_undo(first.pk)
    second = Run.objects.create(
        store=store, kind=update.kind, mode=RunMode.UNDO, undoes=update, origin="cli"
    )

    done = undo.execute_undo(second.pk)

    assert (done.status, done.error_message) == (RunStatus.FAILED, f"Ya se deshizo en #{first.pk}.")
    assert not ItemChange.objects.filter(run=second).exists()
