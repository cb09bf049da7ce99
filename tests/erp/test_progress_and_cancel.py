"""Issue #12 item 2 on the pages: a run's live progress (erp/_progress.html in the
polled status box) and cancelling it (erp/cancel.py), through the Django test
client on the real database, and against the real engine and stand-in."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import Item, ItemChange
from erp import engine
from erp.cancel import CancelResult, request_cancel
from erp.engine import claim, execute_run, request_update
from erp.models import AuditAction, AuditEvent, Connection, Run, RunPhase, RunStatus
from erp.progress import progress_of
from stores.models import Membership, Store
from tests.erp.sync_helpers import connect, make_items

HX: dict[str, Any] = {"HTTP_HX_REQUEST": "true"}


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def connected(store: Store, standin: Any) -> Connection:
    return connect(store, standin)


def running_run(store: Store, **fields: Any) -> Run:
    run = request_update(store, enqueue=False)
    claim(run.pk)
    Run.objects.filter(pk=run.pk).update(**fields)
    return Run.objects.get(pk=run.pk)


def status_fragment(client: Client, store: Store, **params: Any) -> str:
    response = client.get(reverse("erp:status", args=[store.slug]), params, **HX)
    assert response.status_code == 200
    return response.content.decode()


# ---- progress ---------------------------------------------------------------------


def test_the_status_box_shows_received_of_the_announced_total_the_phase_and_an_estimate(
    admin_client, store, connected
):
    run = running_run(
        store,
        started_at=timezone.now() - timedelta(seconds=100),
        received=4000,
        total_items=20000,
        pages=8,
        phase=RunPhase.PLANNING,
    )
    html = status_fragment(admin_client, store)
    assert '<progress max="20000" value="4000"' in html
    shown = text(html)
    assert "Leyendo NonSistemas" in shown
    assert "4.000 de 20.000 ítems recibidos (20 %)" in shown
    assert "8 páginas" in shown
    assert re.search(r"van 1 min 4\d s", shown), shown
    # 40 items a second so far, 16,000 to go: about 400 s (a few more as the clock moves).
    assert re.search(r"faltan unos 6 min \d+ s", shown), shown
    # Still polling, and Verify, Update and "Ver qué cambiaría" (a preview is a run
    # too) are still disabled on the page, each pointing at the sentence saying why.
    assert 'hx-trigger="every 2s"' in html
    page = admin_client.get(reverse("erp:integrations", args=[store.slug])).content.decode()
    assert '<progress max="20000" value="4000"' in page
    for label in ("Verificar conexión", "Actualizar stock y precios ahora", "Ver qué cambiaría"):
        button = re.search(rf"<button[^>]*>{label}</button>", page)
        assert button and 'disabled aria-describedby="erp-busy"' in button.group(0), label
    assert page.count("disabled aria-describedby") == 3
    assert 'id="erp-busy"' in page
    assert 'name="back" value="erp"' in page and "Cancelar actualización" in page
    assert f"#{run.pk}" in page


def test_applying_phase_and_an_unknown_total_show_an_indeterminate_bar(
    admin_client, store, connected
):
    running_run(store, received=1234, pages=2, phase=RunPhase.APPLYING)
    html = status_fragment(admin_client, store)
    bar = re.search(r"<progress[^>]*>", html).group(0)  # type: ignore[union-attr]
    assert "value=" not in bar and "max=" not in bar  # indeterminate
    shown = text(html)
    assert "Aplicando cambios" in shown and "1.234 ítems recibidos" in shown
    assert "faltan" not in shown


def test_a_queued_run_waits_with_an_indeterminate_bar(admin_client, store, connected):
    request_update(store, enqueue=False)
    shown = text(status_fragment(admin_client, store))
    assert "Esperando a que empiece…" in shown and "En cola" in shown


def test_the_bar_never_passes_its_maximum_when_the_erp_sends_more_than_it_announced(
    store, connected
):
    run = running_run(store, received=1050, total_items=1000)
    progress = progress_of(run)
    assert (progress.percent, progress.shown) == (100, 1000)


def test_polling_stops_once_the_run_ends_and_the_outcome_shows(admin_client, store, connected):
    run = running_run(store, received=10, total_items=10, pages=1)
    assert 'hx-trigger="every 2s"' in status_fragment(admin_client, store)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    html = status_fragment(admin_client, store)
    assert "hx-trigger" not in html and "<progress" not in html
    assert f"Última actualización #{run.pk}" in text(html) and "Completada" in text(html)
    # The run's own page is told to reload (its whole page is about the run).
    response = admin_client.get(reverse("erp:status", args=[store.slug]), {"run": run.pk}, **HX)
    assert response["HX-Refresh"] == "true"


def test_the_live_region_speaks_only_when_the_coarse_state_changes(admin_client, store, connected):
    run = running_run(store, received=100, total_items=1000, pages=1, phase=RunPhase.PLANNING)
    said = progress_of(run).key
    html = status_fragment(admin_client, store, said=said)
    assert 'id="erp-live"' not in html  # nothing new to say: the region is left alone
    # The box tells the next poll what it showed.
    assert f'"said": "{said}"' in html
    Run.objects.filter(pk=run.pk).update(received=300)  # 10 % -> 30 %: a quarter crossed
    html = status_fragment(admin_client, store, said=said)
    live = re.search(r'<p id="erp-live" hx-swap-oob="innerHTML">([^<]*)</p>', html)
    assert live is not None and live.group(1) == "Leyendo NonSistemas: 25 %."
    Run.objects.filter(pk=run.pk).update(received=310)  # same quarter: quiet again
    assert 'id="erp-live"' not in status_fragment(
        admin_client, store, said=progress_of(Run.objects.get(pk=run.pk)).key
    )


def test_the_run_page_shows_the_progress_and_its_own_cancel_button(admin_client, store, connected):
    run = running_run(store, received=500, total_items=2000, pages=1)
    html = admin_client.get(reverse("erp:run", args=[store.slug, run.pk])).content.decode()
    assert '<progress max="2000" value="500"' in html
    assert 'name="back" value="run"' in html
    assert 'id="erp-live"' in html and 'aria-live="polite"' in html


# ---- cancel --------------------------------------------------------------------------


def cancel(client: Client, store: Store, run: Run, back: str = "erp") -> Any:
    return client.post(
        reverse("erp:cancel", args=[store.slug, run.pk]), {"back": back}, follow=True
    )


def test_a_queued_run_is_cancelled_at_once_with_its_audit_row(
    admin_client, admin_user, store, connected, standin
):
    run = request_update(store, user=admin_user, enqueue=False)
    page = cancel(admin_client, store, run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    assert run.cancel_requested_by == admin_user and run.cancel_origin == "panel"
    shown = text(page.content.decode())
    assert f"Actualización #{run.pk} cancelada: todavía no había empezado" in shown
    assert f"Cancelada por {admin_user.email} antes de empezar: no cambió nada." in shown
    event = AuditEvent.objects.get(action=AuditAction.CANCEL_REQUESTED)
    assert (event.user, event.store, event.detail) == (
        admin_user,
        store,
        f"Actualización #{run.pk} (estaba en cola)",
    )
    # The task delivered afterwards finds nothing to claim: nothing is read, nothing written.
    standin.clear_requests()
    assert execute_run(run.pk).status == RunStatus.CANCELLED
    assert standin.requests() == []


def test_a_running_run_is_asked_to_stop_and_the_page_says_cancelando(
    admin_client, admin_user, store, connected
):
    run = running_run(store, received=1000, total_items=5000, pages=1)
    page = cancel(admin_client, store, run, back="run")
    assert page.redirect_chain[-1][0] == reverse("erp:run", args=[store.slug, run.pk])
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.cancel_requested_at is not None
    shown = text(page.content.decode())
    assert "Cancelando…" in shown
    assert f"Se pidió cancelar la actualización #{run.pk} ({admin_user.email})" in shown
    # No second button to press: the request is made.
    assert "Sí, cancelarla" not in shown
    assert "Cancelando (lo pidió" in text(status_fragment(admin_client, store))


def test_cancelling_twice_is_harmless(admin_client, admin_user, store, connected):
    run = running_run(store)
    first = request_cancel(store, run, admin_user)
    second = request_cancel(store, run, admin_user)
    assert (first.result, second.result) == (CancelResult.REQUESTED, CancelResult.ALREADY_REQUESTED)
    assert second.run.cancel_requested_at == first.run.cancel_requested_at
    assert "Ya se pidió cancelar" in second.message
    assert AuditEvent.objects.filter(action=AuditAction.CANCEL_REQUESTED).count() == 1


def test_an_ended_run_cannot_be_cancelled_and_says_so(admin_client, store, connected):
    run = running_run(store)
    finished = timezone.now()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=finished)
    page = cancel(admin_client, store, run)
    assert f"La actualización #{run.pk} ya terminó (completada): no hay nada que cancelar." in (
        text(page.content.decode())
    )
    run.refresh_from_db()
    assert (run.status, run.finished_at, run.cancel_requested_at) == (
        RunStatus.SUCCEEDED,
        finished,
        None,
    )
    assert not AuditEvent.objects.filter(action=AuditAction.CANCEL_REQUESTED).exists()


def test_another_store_nor_a_stranger_can_cancel(store, other_store, connected):
    run = request_update(store, enqueue=False)
    stranger = get_user_model().objects.create_user(
        username="otra@norte.test", email="otra@norte.test", password="x"
    )
    Membership.objects.create(store=other_store, user=stranger)
    client = Client()
    client.force_login(stranger)
    url = reverse("erp:cancel", args=[store.slug, run.pk])
    assert client.post(url).status_code == 404  # not a member of "sur"
    # Its own store's URL with the other store's run id: 404 as well.
    assert client.post(reverse("erp:cancel", args=[other_store.slug, run.pk])).status_code == 404
    anonymous = Client().post(url)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.cancel_requested_at is None
    assert not AuditEvent.objects.filter(action=AuditAction.CANCEL_REQUESTED).exists()


def test_cancel_is_a_post(admin_client, store, connected):
    run = request_update(store, enqueue=False)
    assert admin_client.get(reverse("erp:cancel", args=[store.slug, run.pk])).status_code == 405
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_a_cancelled_run_says_who_and_how_many_whole_pages_it_kept(
    admin_client, admin_user, store, connected
):
    run = running_run(store)
    request_cancel(store, run, admin_user)
    # What the engine records when it stops at the page boundary.
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now(), pages=3
    )
    expected = (
        f"Cancelada por {admin_user.email}: se aplicaron 3 páginas completas; la próxima "
        "actualización retoma desde el último punto seguro."
    )
    assert expected in text(status_fragment(admin_client, store))
    page = admin_client.get(reverse("erp:run", args=[store.slug, run.pk])).content.decode()
    assert expected in text(page)


# ---- the engine half (helper a's plan-then-apply engine) ------------------------------


def test_a_running_update_cancelled_mid_way_keeps_whole_pages_and_the_watermark(
    store, standin, admin_user, settings, monkeypatch
):
    settings.VXM_NONSISTEMAS_PAGE_SIZE = 10
    connection = connect(store, standin)
    skus = [f"Yerba Ñandú #{i:02d}" for i in range(30)]
    make_items(store, [(sku, 0, "1.00") for sku in skus])
    standin.load([{"codigo": sku, "stock": "7", "precio_mayorista": "2.50"} for sku in skus])
    run = request_update(store, user=admin_user, enqueue=False)
    # The whole ERP is read first and nothing is written meanwhile (a cancel then
    # keeps nothing: test_plan_and_guard_rails.py); the pages are applied after,
    # here one per transaction, and the admin clicks Cancel once the first is in.
    monkeypatch.setattr(engine, "APPLY_ROWS", 1)
    write = engine.PlanWriter.write
    applied: list[int] = []

    def admin_clicks_cancel_after_the_first_applied_page(
        writer: Any, changes: Any, stats: Any
    ) -> None:
        write(writer, changes, stats)
        applied.append(len(changes))
        if len(applied) == 1:
            asked = request_cancel(store, writer.run, admin_user)
            assert asked.result == CancelResult.REQUESTED

    monkeypatch.setattr(
        engine.PlanWriter, "write", admin_clicks_cancel_after_the_first_applied_page
    )

    ended = execute_run(run.pk)
    assert ended.cancel_requested_at is not None
    assert ended.status == RunStatus.CANCELLED
    assert ended.received == 30 and applied == [10]
    # Whole pages only: what it applied is what it counted, each item with its
    # history row, and the rest is untouched.
    changed = Item.objects.filter(store=store, stock=7).count()
    assert changed == ended.stock_changed == 10
    assert ItemChange.objects.filter(run=ended).count() == 10
    assert Item.objects.filter(store=store, stock=0).count() == 30 - changed
    connection.refresh_from_db()
    assert connection.watermark is None
