"""The panel and `vxm erp` side of previews, held runs and guard rails (issue #11)."""

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from catalog.models import Item
from erp.models import AuditAction, AuditEvent, GuardRails, Run, RunMode, RunStatus
from stores.models import Store
from tests.erp.test_pages import IMMEDIATE, shown_messages, text, url
from tests.erp.test_plan_and_guard_rails import SKUS, catalog, in_step

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.guard_rails]


@pytest.fixture
def synced(store: Store, standin: Any) -> Store:
    return in_step(store, standin)


def to_zero(standin: Any, n: int = 90) -> None:
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "0.000"} for sku in SKUS[:n]])


def vxm(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("erp", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_preview_button_reads_the_erp_and_the_run_page_says_nothing_changed(
    admin_client: Client, synced: Store, standin: Any, settings: Any
) -> None:
    store = synced
    settings.TASKS = IMMEDIATE
    before = catalog(store)
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "4.000"} for sku in SKUS[:3]])
    page = text(admin_client.get(url("integrations", store)))
    assert "Ver qué cambiaría" in page and "Controles de seguridad" in page

    response = admin_client.post(url("preview", store), follow=True)

    run = Run.objects.get(mode=RunMode.PREVIEW)
    assert run.status == RunStatus.SUCCEEDED
    assert "Vista previa" in shown_messages(response)[0][1]
    page = text(admin_client.get(url("run", store, run.pk)))
    assert "Vista previa: no se cambió nada." in page
    assert f"{SKUS[0]} Descripción" not in page  # names are the store's
    assert all(sku in page for sku in SKUS[:3]) and "10 → 4" in page
    assert catalog(store) == before
    csv = admin_client.get(url("run_changes_csv", store, run.pk))
    body = csv.getvalue().decode("utf-8-sig")
    assert sum(1 for line in body.splitlines() if "Yerba" in line) == 3


def test_a_held_run_shows_its_findings_and_is_discarded_or_applied_from_its_page(
    admin_client: Client, synced: Store, standin: Any, settings: Any
) -> None:
    store = synced
    settings.TASKS = IMMEDIATE
    to_zero(standin)
    admin_client.post(url("update", store))
    held = Run.objects.get(status=RunStatus.HELD)
    page = text(admin_client.get(url("integrations", store)))
    assert f"La actualización #{held.pk} quedó retenida" in page
    page = text(admin_client.get(url("run", store, held.pk)))
    assert "90 de 120 ítems quedarían con stock 0." in page
    assert "Aplicar igual" in page and "Descartar" in page and "10 → 0" in page

    response = admin_client.post(url("run_discard", store, held.pk), follow=True)
    assert "descartada" in shown_messages(response)[0][1]
    assert Run.objects.get(pk=held.pk).status == RunStatus.DISCARDED
    assert "Aplicar igual" not in text(response)
    # Discarding twice says it is no longer held.
    again = admin_client.post(url("run_discard", store, held.pk), follow=True)
    assert "ya no está retenida" in shown_messages(again)[0][1]

    admin_client.post(url("update", store))
    second = Run.objects.filter(status=RunStatus.HELD).get()
    admin_client.post(url("run_apply", store, second.pk))
    second.refresh_from_db()
    assert second.status == RunStatus.SUCCEEDED and second.decided_by is not None
    assert sum(1 for stock, _ in catalog(store).values() if stock == 0) == 90
    assert AuditEvent.objects.filter(action=AuditAction.RUN_APPLIED).count() == 1


def test_apply_and_discard_only_take_a_post(
    admin_client: Client, synced: Store, standin: Any
) -> None:
    to_zero(standin)
    held = call_and_get_held(synced)
    assert admin_client.get(url("run_apply", synced, held.pk)).status_code == 405
    assert Client().post(url("run_apply", synced, held.pk)).status_code == 302  # to login
    assert Run.objects.get(pk=held.pk).status == RunStatus.HELD


def call_and_get_held(store: Store) -> Run:
    with pytest.raises(CommandError) as e:
        vxm("sync", store.slug)
    assert e.value.returncode == 4
    return Run.objects.get(status=RunStatus.HELD)


def test_the_guard_rails_form_changes_them_and_refuses_a_bad_percent(
    admin_client: Client, synced: Store
) -> None:
    store = synced
    form = {
        "zero_stock_on": "on",
        "zero_stock_percent": "35",
        "zero_stock_min": "10",
        "price_percent": "20",
        "price_min": "20",
        "full_drop_on": "on",
        "full_drop_percent": "60",
    }
    response = admin_client.post(url("guards", store), form, follow=True)
    assert shown_messages(response) == [("success", "Controles de seguridad guardados.")]
    rails = GuardRails.objects.get(store=store)
    assert (rails.zero_stock_percent, rails.zero_stock_min, rails.price_on) == (35, 10, False)
    assert AuditEvent.objects.filter(action=AuditAction.GUARDS_CHANGED).count() == 1

    response = admin_client.post(
        url("guards", store), {**form, "zero_stock_percent": "150"}, follow=True
    )
    [(level, message)] = shown_messages(response)
    assert level == "error" and "entre 1 y 100" in message
    assert GuardRails.objects.get(store=store).zero_stock_percent == 35


def test_cli_dry_run_changes_nothing_and_says_what_would_trip(synced: Store, standin: Any) -> None:
    store = synced
    before = catalog(store)
    to_zero(standin)
    out, _ = vxm("sync", store.slug, "--dry-run", "--json")
    summary = json.loads(out)
    assert (summary["status"], summary["mode"]) == ("succeeded", "preview")
    assert summary["counts"]["stock_changed"] == 90
    assert summary["guard_findings"][0]["message"] == "90 de 120 ítems quedarían con stock 0."
    assert catalog(store) == before
    out, _ = vxm("sync", store.slug, "--dry-run")
    assert "Vista previa: no se cambió nada." in out
    assert "Vista previa: Completada" in vxm("runs", store.slug)[0]


def test_cli_held_update_exits_4_and_is_applied_or_discarded_by_id(
    synced: Store, standin: Any
) -> None:
    store = synced
    to_zero(standin)
    held = call_and_get_held(store)
    Item.objects.filter(store=store, sku=SKUS[0]).update(stock=99)

    out, _ = vxm("apply", store.slug, str(held.pk))
    assert "1 ítems cambiados en la tienda mientras tanto" in out
    assert catalog(store)[SKUS[0]][0] == 99
    with pytest.raises(CommandError, match="ya no está retenida"):
        vxm("discard", store.slug, str(held.pk))
    with pytest.raises(CommandError, match="no tiene la actualización #999999"):
        vxm("apply", store.slug, "999999")


def test_cli_guard_prints_and_changes_the_rails(synced: Store) -> None:
    out, _ = vxm("guard", synced.slug)
    assert "Stock a 0: retener si más del 20 % de los ítems (y al menos 50)" in out
    out, _ = vxm(
        "guard",
        synced.slug,
        "--zero-stock-percent",
        "30",
        "--off",
        "price",
        "--full-drop-percent",
        "50",
    )
    assert "más del 30 %" in out and "Precios: apagado" in out and "menos del 50 %" in out
    with pytest.raises(CommandError, match="entre 1 y 100"):
        vxm("guard", synced.slug, "--price-percent", "0")
    with pytest.raises(CommandError, match="prender y apagar"):
        vxm("guard", synced.slug, "--off", "price", "--on", "price")
