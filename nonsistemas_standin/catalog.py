"""The stand-in's catalog: items, their JSON form, ordering, paging, late commits.

Paging must stay fast with 300,000 items, so the catalog keeps:

- `_items`: codigo -> Item, each caching its serialized JSON bytes (`encoded`),
  dropped whenever the item changes or the number format switches;
- `_keys`: a sorted list of `(modificado, codigo)`, the API's order, maintained
  with bisect. Filtering by `desde` is one bisect, a page is one slice.

A page is computed from the data as it is when it is requested, exactly like the
contract says: offset paging over the filtered, ordered keys of that moment.

Late commits (an edit whose transaction commits after its `modificado`) are kept
in a heap by the instant they become visible and applied lazily: whoever reads the
catalog first calls `apply_due(now)`.
"""

import heapq
import json
import re
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .clock import format_timestamp

STOCK_PLACES = Decimal("0.001")
PRICE_PLACES = Decimal("0.01")
ZERO_STOCK = Decimal("0.000")

# Fields an edit may change. `modificado` is not among them: the instance sets it.
EDITABLE_FIELDS = frozenset({"descripcion", "stock", "precio_mayorista", "moneda", "activo"})
LOADABLE_FIELDS = EDITABLE_FIELDS | {"codigo", "modificado"}

# Past this many items in one edit, rebuilding the key list (filter + timsort on
# nearly sorted data) beats one O(n) list deletion per item.
BULK_REBUILD_THRESHOLD = 256

FieldChanges = dict[str, Any]


@dataclass(slots=True, eq=False)
class Item:
    codigo: str
    descripcion: str
    stock: Decimal
    precio_mayorista: Decimal | None
    moneda: str
    activo: bool
    modificado: int  # POSIX seconds; the contract's timestamps have seconds precision
    encoded: bytes | None = None  # cached JSON of the item in the current number format


def _to_decimal(value: object, places: Decimal, field: str) -> Decimal:
    # bool is an int subclass; True as a stock is a caller's mistake, not 1 unit.
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{field}: expected a number or numeric string, got {value!r}")
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
        if not number.is_finite():
            raise ValueError(f"{field}: not a finite number: {value!r}")
        return number.quantize(places)
    except InvalidOperation as e:
        raise ValueError(f"{field}: not a number: {value!r}") from e


def to_stock(value: object) -> Decimal:
    return _to_decimal(value, STOCK_PLACES, "stock")


def to_price(value: object) -> Decimal | None:
    if value is None:
        return None
    return _to_decimal(value, PRICE_PLACES, "precio_mayorista")


def to_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a string, got {value!r}")
    return value


def to_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{field}: expected true or false, got {value!r}")
    return value


def normalize_fields(data: Mapping[str, Any]) -> FieldChanges:
    """Validate and convert the editable fields present in `data`."""
    out: FieldChanges = {}
    for field, value in data.items():
        if field == "stock":
            out[field] = to_stock(value)
        elif field == "precio_mayorista":
            out[field] = to_price(value)
        elif field in ("descripcion", "moneda"):
            out[field] = to_text(value, field)
        elif field == "activo":
            out[field] = to_bool(value, field)
    return out


def item_from_dict(data: Mapping[str, Any], modificado: int) -> Item:
    """An Item from a `load()` dict; `modificado` is used when the dict has none."""
    unknown = set(data) - LOADABLE_FIELDS
    if unknown:
        raise ValueError(f"unknown item fields: {sorted(unknown)}")
    if "codigo" not in data or "stock" not in data:
        raise ValueError(f"an item needs codigo and stock: {dict(data)!r}")
    fields = normalize_fields(data)
    return Item(
        codigo=to_text(data["codigo"], "codigo"),
        descripcion=fields.get("descripcion", ""),
        stock=fields["stock"],
        precio_mayorista=fields.get("precio_mayorista"),
        moneda=fields.get("moneda", "ARS"),
        activo=fields.get("activo", True),
        modificado=modificado,
    )


def changes_from_dicts(changes: Sequence[Mapping[str, Any]]) -> dict[str, FieldChanges]:
    """codigo -> validated field changes; two dicts for one codigo are merged in order."""
    merged: dict[str, FieldChanges] = {}
    for change in changes:
        if "codigo" not in change:
            raise ValueError(f"an edit needs a codigo: {dict(change)!r}")
        codigo = to_text(change["codigo"], "codigo")
        unknown = set(change) - EDITABLE_FIELDS - {"codigo"}
        if unknown:
            raise ValueError(f"fields that cannot be edited: {sorted(unknown)}")
        merged.setdefault(codigo, {}).update(normalize_fields(change))
    return merged


def _legacy_number(value: Decimal) -> str:
    # Old instances send plain JSON numbers: 340, 18250.5 (no trailing zeros).
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# What json.dumps(ensure_ascii=False) escapes in a string; most codes and
# descriptions have none of it and can skip the call.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _json_string(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


def encode_item(item: Item, legacy_numbers: bool) -> bytes:
    """The item's JSON as the API sends it, built by hand: this runs 300,000 times."""
    if legacy_numbers:
        stock = _legacy_number(item.stock)
        price = "null" if item.precio_mayorista is None else _legacy_number(item.precio_mayorista)
    else:
        stock = f'"{item.stock:.3f}"'
        price = "null" if item.precio_mayorista is None else f'"{item.precio_mayorista:.2f}"'
    parts = [
        '{"codigo": ',
        _json_string(item.codigo),
        ', "descripcion": ',
        _json_string(item.descripcion),
        ', "stock": ',
        stock,
        ', "precio_mayorista": ',
        price,
    ]
    if legacy_numbers:
        # Old instances have no currency (it means ARS) and omit activo when true.
        if not item.activo:
            parts.append(', "activo": false')
    else:
        parts += [
            ', "moneda": ',
            _json_string(item.moneda),
            ', "activo": ',
            "true" if item.activo else "false",
        ]
    parts += [', "modificado": "', format_timestamp(item.modificado), '"}']
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class Page:
    total_items: int  # items matching `desde`, at the time of the request
    items: list[bytes]  # encoded items of the requested page


class Catalog:
    """Items in the API's order. Not thread-safe: the instance holds a lock around it."""

    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self._keys: list[tuple[int, str]] = []
        # (visible_at, sequence, modificado, changes); sequence keeps the heap from
        # ever comparing the dicts and applies simultaneous commits in edit order.
        self._late: list[tuple[float, int, int, dict[str, FieldChanges]]] = []
        self._sequence = 0
        self._legacy_numbers = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def legacy_numbers(self) -> bool:
        return self._legacy_numbers

    def set_legacy_numbers(self, legacy: bool) -> None:
        if legacy != self._legacy_numbers:
            self._legacy_numbers = legacy
            for item in self._items.values():
                item.encoded = None

    def replace(self, items: Iterable[Item]) -> None:
        """Make `items` the whole catalog; pending late commits are dropped."""
        by_codigo: dict[str, Item] = {}
        for item in items:
            if item.codigo in by_codigo:
                raise ValueError(f"duplicate codigo: {item.codigo!r}")
            item.encoded = None
            by_codigo[item.codigo] = item
        self._items = by_codigo
        self._keys = sorted((item.modificado, item.codigo) for item in by_codigo.values())
        self._late = []

    def knows(self, codigo: str) -> bool:
        """Whether the item exists, visibly or through a commit still pending."""
        return codigo in self._items or any(codigo in late[3] for late in self._late)

    def apply(self, changes: Mapping[str, FieldChanges], modificado: int) -> None:
        """Apply an edit visibly now: every changed item gets `modificado`."""
        rebuild = len(changes) > BULK_REBUILD_THRESHOLD
        keys = self._keys
        for codigo, fields in changes.items():
            item = self._items.get(codigo)
            if item is None:
                item = Item(
                    codigo=codigo,
                    descripcion=fields.get("descripcion", ""),
                    stock=fields.get("stock", ZERO_STOCK),
                    precio_mayorista=fields.get("precio_mayorista"),
                    moneda=fields.get("moneda", "ARS"),
                    activo=fields.get("activo", True),
                    modificado=modificado,
                )
                self._items[codigo] = item
            else:
                if not rebuild:
                    index = bisect_left(keys, (item.modificado, codigo))
                    del keys[index]
                for field, value in fields.items():
                    setattr(item, field, value)
                item.modificado = modificado
                item.encoded = None
            if not rebuild:
                insort(keys, (modificado, codigo))
        if rebuild:
            changed = set(changes)
            kept = [key for key in keys if key[1] not in changed]
            kept.extend((modificado, codigo) for codigo in changes)
            kept.sort()
            self._keys = kept

    def schedule(
        self, changes: dict[str, FieldChanges], modificado: int, visible_at: float
    ) -> None:
        """An edit made at `modificado` whose commit becomes visible at `visible_at`."""
        self._sequence += 1
        heapq.heappush(self._late, (visible_at, self._sequence, modificado, changes))

    def apply_due(self, now: float) -> None:
        """Apply the late commits whose moment has come, oldest commit first."""
        while self._late and self._late[0][0] <= now:
            _, _, modificado, changes = heapq.heappop(self._late)
            self.apply(changes, modificado)

    def _encoded(self, codigo: str) -> bytes:
        item = self._items[codigo]
        encoded = item.encoded
        if encoded is None:
            encoded = item.encoded = encode_item(item, self._legacy_numbers)
        return encoded

    def page(self, desde: float | None, pagina: int, por_pagina: int) -> Page:
        """Offset paging over the items with modificado >= desde, in API order."""
        keys = self._keys
        first = 0 if desde is None else bisect_left(keys, desde, key=lambda key: key[0])
        start = first + (pagina - 1) * por_pagina
        selected = keys[start : start + por_pagina] if start < len(keys) else []
        return Page(len(keys) - first, [self._encoded(codigo) for _, codigo in selected])

    def encoded_all(self) -> list[bytes]:
        return [self._encoded(codigo) for _, codigo in self._keys]
