"""The integration at a glance (issue #12, item 5), through the Django test client
against updates run for real (engine → NonSistemas stand-in over HTTP).

What the admin reads first on Integraciones > ERP: the last good update and how
long ago, the last failure after it and what to do, how many ERP codes have no
product (from the last run that read the whole ERP), how many ambiguous SKU groups
the store has (each a link to its list); and, on the catalog, when stock and
prices last came from NonSistemas.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from erp import health
from erp.models import Connection, Run, RunMode, RunStatus
from stores.models import Store
from tests.conftest import ERP_PASSWORD
from tests.erp.sync_helpers import connect, make_items, sync
from tests.erp.test_pages import text

pytestmark = pytest.mark.django_db(transaction=True)


def erp_item(codigo: str, stock: str, price: str, modificado: datetime) -> dict[str, Any]:
    return {
        "codigo": codigo,
        "descripcion": f"Artículo {codigo.strip()}",
        "stock": stock,
        "precio_mayorista": price,
        "moneda": "ARS",
        "activo": True,
        "modificado": modificado.isoformat(timespec="seconds"),
    }


@pytest.fixture
def shop(store: Store, standin: Any) -> Connection:
    """A store whose catalog has an ambiguous pair ("Azúcar-01" / " azúcar-01"
    differ only in case and spaces) and an ERP with two codes it has no product for."""
    make_items(
        store,
        [
            ("ACE-0001", 5, "100.00"),
            ("Azúcar-01", 10, "850.50"),
            ("azúcar-01 ", 3, "850.50"),
            ("TORN-1/2#+%", 100, "12.30"),
        ],
        names={"ACE-0001": "Aceite de girasol 1,5 l x 12", "Azúcar-01": "Azúcar común 1 kg"},
    )
    yesterday = standin.now() - timedelta(days=1)
    standin.load(
        [
            erp_item(" ace-0001 ", "340", "18250.00", yesterday),
            erp_item("TORN-1/2#+%", "100", "12.30", yesterday),
            erp_item("GHOST-9001", "5", "5.00", yesterday),
            erp_item("Fantasma ñandú", "1", "1.00", yesterday),
        ]
    )
    return connect(store, standin)


def erp_page(client: Client, store: Store) -> str:
    response = client.get(reverse("erp:integrations", args=[store.slug]))
    assert response.status_code == 200
    return response.content.decode()


def health_text(client: Client, store: Store) -> str:
    page = erp_page(client, store)
    start = page.index('id="erp-health"')
    return text(type("R", (), {"content": page[start : page.index("</section>", start)].encode()}))


def test_erp_page_opens_on_the_last_good_update_the_codes_with_no_product_and_ambiguous_skus(
    admin_client: Client, store: Store, shop: Connection
) -> None:
    run = sync(store)
    assert run.status in (RunStatus.SUCCEEDED, RunStatus.WARNINGS) and run.unmatched == 2

    page = erp_page(admin_client, store)
    # The health comes first: before the orders warning and the ERP card.
    assert page.index('id="erp-health"') < page.index('id="pedidos"')
    shown = health_text(admin_client, store)
    local = timezone.localtime(run.finished_at, store.tz)
    assert f"Última actualización buena hace menos de un minuto ({local:%d/%m/%Y %H:%M}" in shown
    assert f"actualización #{run.pk}" in shown
    assert "Última falla" not in shown
    assert "Códigos del ERP sin producto 2 códigos según la última lectura completa" in shown
    assert "SKUs ambiguos en la tienda 1 grupo de SKUs que el ERP no puede distinguir" in shown
    unmatched_link = reverse("erp:run", args=[store.slug, run.pk]) + "?kind=unmatched"
    assert unmatched_link in page
    # The link lists exactly the two codes.
    issues = text(admin_client.get(unmatched_link))
    assert "GHOST-9001" in issues and "Fantasma ñandú" in issues

    # The ambiguous link lists the pair, and nothing else.
    ambiguous_link = reverse("catalog:list", args=[store.slug]) + "?sku=ambiguous"
    assert ambiguous_link in page
    listed = admin_client.get(ambiguous_link)
    assert [item.sku for item in listed.context["items"]] == ["Azúcar-01", "azúcar-01"]
    assert "el ERP no puede saber a cuál se refiere un código" in text(listed)


def test_a_failure_after_the_last_good_update_says_what_happened_and_what_to_do(
    admin_client: Client, store: Store, shop: Connection, standin: Any
) -> None:
    good = sync(store)
    shop.set_password("una-clave-equivocada")
    shop.save()
    failed = sync(store)
    assert failed.status == RunStatus.FAILED

    shown = health_text(admin_client, store)
    assert f"actualización #{good.pk}" in shown
    assert "Última falla Falló hace menos de un minuto" in shown
    assert failed.error_message in shown
    assert "probá con «Verificar conexión» y después «Actualizar stock y precios ahora»" in shown

    # Fixed: the next good update makes the failure old news.
    shop.set_password(ERP_PASSWORD)
    shop.save()
    fixed = sync(store)
    assert fixed.status in (RunStatus.SUCCEEDED, RunStatus.WARNINGS)
    shown = health_text(admin_client, store)
    assert "Última falla" not in shown
    assert f"actualización #{fixed.pk}" in shown


def test_codes_with_no_product_come_from_the_last_run_that_read_the_whole_erp(
    admin_client: Client, store: Store, shop: Connection, standin: Any
) -> None:
    first = sync(store)  # no watermark yet: reads everything
    assert first.desde is None and first.unmatched == 2
    # An incremental update receives only what changed since: one known item.
    standin.edit([{"codigo": " ace-0001 ", "stock": "12"}])
    later = sync(store)
    assert later.desde is not None and later.unmatched == 0

    shown = health_text(admin_client, store)
    assert f"actualización #{later.pk}" in shown  # the last good update is the newest
    assert "Códigos del ERP sin producto 2 códigos" in shown  # known from the whole read
    page = erp_page(admin_client, store)
    assert reverse("erp:run", args=[store.slug, first.pk]) + "?kind=unmatched" in page

    # A full update reads everything again and becomes the reference.
    full = sync(store, full=True)
    assert full.unmatched == 2
    assert reverse("erp:run", args=[store.slug, full.pk]) + "?kind=unmatched" in erp_page(
        admin_client, store
    )


def test_previews_and_undos_are_not_the_last_update_of_the_catalog(
    admin_client: Client, store: Store, shop: Connection
) -> None:
    run = sync(store)
    later = timezone.now() + timedelta(minutes=5)
    for mode in (RunMode.PREVIEW, RunMode.UNDO):
        Run.objects.create(
            store=store,
            kind=run.kind,
            mode=mode,
            status=RunStatus.SUCCEEDED,
            started_at=later,
            finished_at=later,
        )
    assert health.health(store).last_success == run
    freshness = health.last_erp_update(store)
    assert freshness is not None and freshness.run == run


def test_no_update_yet_says_how_to_get_one_and_knows_no_codes(
    admin_client: Client, store: Store, shop: Connection
) -> None:
    shown = health_text(admin_client, store)
    assert "Todavía ninguna" in shown and "«Actualizar stock y precios ahora»" in shown
    assert "Se sabe con una actualización completa" in shown
    assert "Próxima actualización automática" not in shown


def test_a_store_with_no_ambiguous_skus_and_no_codes_missing_says_none(
    admin_client: Client, store: Store, standin: Any
) -> None:
    make_items(store, [("ACE-0001", 5, "100.00")])
    standin.load([erp_item("ACE-0001", "7", "100.00", standin.now() - timedelta(days=1))])
    connect(store, standin)
    sync(store)
    shown = health_text(admin_client, store)
    assert "Códigos del ERP sin producto Ninguno" in shown
    assert "SKUs ambiguos en la tienda Ninguno" in shown
    assert "?sku=ambiguous" not in erp_page(admin_client, store)


def test_the_next_automatic_update_shows_when_a_schedule_gives_one(
    store: Store, shop: Connection
) -> None:
    at = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    with timezone.override(store.tz):
        html = render_to_string(
            "erp/_health.html", {"store": store, "health": health.health(store, next_update=at)}
        )
    assert "Próxima actualización automática" in html
    assert "05/12/2026 06:30" in html  # Buenos Aires is UTC-3


def test_the_catalog_says_when_stock_and_prices_last_came_from_nonsistemas(
    admin_client: Client, store: Store, shop: Connection
) -> None:
    catalog = reverse("catalog:list", args=[store.slug])
    assert "Stock y precios de NonSistemas: todavía no se actualizaron." in text(
        admin_client.get(catalog)
    )
    store.time_zone = "Asia/Tokyo"  # the store's clock, not the server's
    store.save()
    run = sync(store)
    assert run.finished_at is not None
    local = timezone.localtime(run.finished_at, store.tz)
    shown = text(admin_client.get(catalog))
    assert (
        "Stock y precios de NonSistemas: actualizados hace menos de un minuto "
        f"({local:%d/%m %H:%M}) · ver qué cambió" in shown
    )
    # An hour later, the line says so.
    Run.objects.filter(pk=run.pk).update(finished_at=run.finished_at - timedelta(minutes=63))
    assert "actualizados hace 1 hora" in text(admin_client.get(catalog))


def test_a_store_with_no_erp_has_no_erp_line_in_its_catalog(
    admin_client: Client, store: Store
) -> None:
    make_items(store, [("ACE-0001", 5, "100.00")])
    assert "Stock y precios de" not in text(
        admin_client.get(reverse("catalog:list", args=[store.slug]))
    )


def test_the_item_page_shows_its_last_change_from_nonsistemas(
    admin_client: Client, store: Store, shop: Connection
) -> None:
    from catalog.models import Item

    run = sync(store)
    changed = Item.objects.get(store=store, sku="ACE-0001")
    assert changed.stock == 340 and changed.wholesale_price == Decimal("18250.00")
    shown = text(admin_client.get(reverse("catalog:item", args=[store.slug, changed.pk])))
    assert "NonSistemas cambió este producto por última vez hace menos de un minuto" in shown
    assert f"actualización #{run.pk}" in shown

    # The ERP sent it unchanged: no history, so nothing to claim.
    same = Item.objects.get(store=store, sku="TORN-1/2#+%")
    shown = text(admin_client.get(reverse("catalog:item", args=[store.slug, same.pk])))
    assert "NonSistemas todavía no cambió el stock ni el precio de este producto." in shown
