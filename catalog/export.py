"""Catalog export: CSV or JSON streamed, and XLSX.

Used by the panel's download and by `vxm catalog export`. The panel's CSV is the
Excel one (vxm/spreadsheets.py: `;`, decimal comma, BOM, Spanish headers that our
import reads back); the CLI's CSV and JSON are the plain forms below, which scripts
read and which must not change. Items are read by SKU in
keyset chunks (WHERE sku > last ... LIMIT n) rather than through one open cursor,
so a slow download holds no cursor or transaction open, and memory stays flat at
300,000 items.

Columns: sku, name, stock, wholesale_price ("18250.00": a plain decimal any program
reads), updated_at (ISO-8601 with the store's UTC offset).
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO

from django.utils.translation import gettext_lazy as _

from catalog.models import Item
from stores.models import Store
from vxm import spreadsheets
from vxm.spreadsheets import Column, ReportLocale

COLUMNS = ("sku", "name", "stock", "wholesale_price", "updated_at")
CHUNK = 2000
FORMATS = ("csv", "json", "xlsx")
# The spreadsheet columns, in COLUMNS' order. Our CSV import reads these headers
# too (csv_import.HEADER_ALIASES), so an admin can export, edit in Excel and import.
SPREADSHEET_COLUMNS = (
    Column(_("SKU"), width=20, guard_formula=False),
    Column(_("Nombre"), width=45, guard_formula=False),
    Column(_("Stock"), "int", width=10),
    Column(_("Precio mayorista"), "money", width=18),
    Column(_("Actualizado"), "datetime", width=20),
)

Row = tuple[str, str, int, Decimal, datetime]


def iter_rows(store: Store, chunk_size: int = CHUNK) -> Iterator[Row]:
    """Every item of the store as (sku, name, stock, price, updated_at), by SKU."""
    items = Item.objects.filter(store=store).order_by("sku")
    fields = ("sku", "name", "stock", "wholesale_price", "updated_at")
    last: str | None = None
    while True:
        page = items if last is None else items.filter(sku__gt=last)
        rows = list(page.values_list(*fields)[:chunk_size])
        yield from rows
        if len(rows) < chunk_size:
            return
        last = rows[-1][0]


def _price(value: Decimal) -> str:
    return f"{value:.2f}"


def iter_csv(store: Store) -> Iterator[str]:
    """The CSV text in pieces: a header line, then one piece per few hundred rows."""
    tz = store.tz
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for count, (sku, name, stock, price, updated_at) in enumerate(iter_rows(store), 1):
        writer.writerow((sku, name, stock, _price(price), updated_at.astimezone(tz).isoformat()))
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def iter_json(store: Store) -> Iterator[str]:
    """A JSON array of objects with the CSV's columns; the price is a string so no
    program reads it as a binary float."""
    tz = store.tz
    pieces = ["["]
    separator = "\n"
    for sku, name, stock, price, updated_at in iter_rows(store):
        obj = {
            "sku": sku,
            "name": name,
            "stock": stock,
            "wholesale_price": _price(price),
            "updated_at": updated_at.astimezone(tz).isoformat(),
        }
        pieces.append(separator + json.dumps(obj, ensure_ascii=False))
        separator = ",\n"
        if len(pieces) >= 500:
            yield "".join(pieces)
            pieces = []
    pieces.append("\n]\n")
    yield "".join(pieces)


def iter_excel_csv(store: Store, locale: ReportLocale) -> Iterator[str]:
    """The CSV a spreadsheet opens right in `locale` (the panel's download).

    SKUs and names are not formula-escaped here, unlike the run reports: a quote
    added in front would come back as part of the SKU through the import.
    """
    return spreadsheets.iter_csv(SPREADSHEET_COLUMNS, iter_rows(store), store.tz, locale)


def write_xlsx(store: Store, target: IO[bytes] | str, locale: ReportLocale) -> None:
    spreadsheets.write_xlsx(
        target, str(_("Catálogo")), SPREADSHEET_COLUMNS, iter_rows(store), store.tz, locale
    )


def iter_export(store: Store, fmt: str) -> Iterator[str]:
    """The plain export in `fmt` ("csv" or "json"), as the CLI prints it."""
    if fmt == "json":
        return iter_json(store)
    if fmt == "csv":
        return iter_csv(store)
    raise ValueError(f"unknown export format {fmt!r}")
