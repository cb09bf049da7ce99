"""Test helpers for update runs: connect a store to the stand-in, run an update
in-process, and the oracle that says what the catalog should look like."""

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from catalog.models import Item, sku_key
from erp.engine import execute_run, request_update
from erp.models import Connection, ErpKind, Run
from stores.models import Store
from tests.conftest import ERP_PASSWORD, ERP_USER


def connect(
    store: Store, standin: Any, *, username: str = ERP_USER, password: str = ERP_PASSWORD
) -> Connection:
    connection = Connection(
        store=store, kind=ErpKind.NONSISTEMAS, url=standin.url, username=username
    )
    connection.set_password(password)
    connection.save()
    return connection


def sync(store: Store, *, full: bool = False) -> Run:
    run = request_update(store, full=full, origin="cli", enqueue=False)
    return execute_run(run.pk)


def make_items(
    store: Store, rows: list[tuple[str, int, str]], names: dict[str, str] | None = None
) -> None:
    """Items (sku, stock, price); named by `names`, or after their SKU."""
    names = names or {}
    Item.objects.bulk_create(
        [
            Item(
                store=store,
                sku=sku,
                sku_key=sku_key(sku),
                name=names.get(sku, sku),
                stock=stock,
                wholesale_price=Decimal(price),
            )
            for sku, stock, price in rows
        ]
    )


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def expected_values(erp_item: dict[str, Any], currency: str) -> tuple[int | None, Decimal | None]:
    """The rules of issue #3, written independently of the engine: (stock, price);
    None means "not applied" (the store keeps what it had)."""
    stock = _dec(erp_item.get("stock"))
    if erp_item.get("activo", True) is False:
        new_stock = 0  # whatever its stock says
    elif stock is None:
        return None, None
    else:
        new_stock = max(0, int(stock.to_integral_value(rounding=ROUND_FLOOR)))
    price = _dec(erp_item.get("precio_mayorista"))
    if price is not None:
        price = price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if price is None or price <= 0 or erp_item.get("moneda", "ARS") != currency:
        price = None
    return new_stock, price


def assert_catalog_matches(
    store: Store, erp_items: list[dict[str, Any]], before: dict[str, tuple[int, Decimal]]
) -> int:
    """Every matched store item equals what the rules say given the ERP's data.

    `before` holds each SKU's (stock, price) before any update: fields the rules
    do not apply keep it. Returns how many items were checked.
    """
    by_key: dict[str, list[dict[str, Any]]] = {}
    for erp_item in erp_items:
        by_key.setdefault(sku_key(erp_item["codigo"]), []).append(erp_item)
    items = list(Item.objects.filter(store=store))
    key_counts: dict[str, int] = {}
    for item in items:
        key_counts[item.sku_key] = key_counts.get(item.sku_key, 0) + 1
    checked = 0
    wrong = []
    for item in items:
        matches = by_key.get(item.sku_key, [])
        old_stock, old_price = before[item.sku]
        if key_counts[item.sku_key] > 1 or len(matches) != 1:
            want_stock, want_price = old_stock, old_price
        else:
            new_stock, new_price = expected_values(matches[0], store.currency)
            want_stock = old_stock if new_stock is None else new_stock
            want_price = old_price if new_price is None else new_price
        checked += 1
        if (item.stock, item.wholesale_price) != (want_stock, want_price):
            wrong.append((item.sku, (item.stock, item.wholesale_price), (want_stock, want_price)))
    assert not wrong, f"{len(wrong)} items differ from NonSistemas (sku, have, want): {wrong[:10]}"
    return checked
