"""Catalog CSV import: parse, validate the whole file, then apply it all at once.

Shared by the panel's import page and `vxm catalog import`. The file is read twice
as a stream: the first pass checks every row without touching the database; the
second pass, only when the first found nothing wrong, creates and updates items
chunk by chunk inside a single transaction. A file with any bad row writes
nothing (all-or-nothing), so a half-imported price list never reaches the store.

A row names an item the way ERP codes do (catalog.models.sku_key: letter case and
surrounding spaces aside), so an exported file imported back changes nothing and
never creates a near-duplicate; where the key names several items, the exact SKU
decides, or the row is reported as ambiguous and skipped (`_match`).

The file is `sku,name,stock,wholesale_price` with a header row, comma-, semicolon-
or tab-separated (es-AR Excel uses ";"), in UTF-8 (with or without BOM) or the
Windows encoding Excel uses in Argentina (cp1252, latin-1 as a last resort).
"""

import codecs
import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from catalog.models import ChangeSource, Item, change_for, clean_sku, sku_key
from catalog.quantities import QuantityError, parse_price, parse_stock
from catalog.writes import CatalogWriter, Change, item_in
from stores.models import Store

COLUMNS = ("sku", "name", "stock", "wholesale_price")
# Our own export adds this column; accepting (and ignoring) it lets an admin export,
# edit in Excel and import the same file back.
IGNORED_COLUMNS = ("updated_at",)
EXPECTED_HEADER = ",".join(COLUMNS)
# The panel's spreadsheet export names the columns in Spanish (catalog/export.py's
# SPREADSHEET_COLUMNS); read them as the columns they are, lower-cased.
HEADER_ALIASES = {
    "nombre": "name",
    "precio mayorista": "wholesale_price",
    "actualizado": "updated_at",
    # The headers of the English export (vxm/spreadsheets.py ENGLISH).
    "wholesale price": "wholesale_price",
    "updated": "updated_at",
}

MAX_FILE_BYTES = 50 * 1024 * 1024
# Rows are applied in chunks this size: one SELECT per chunk finds the existing items.
CHUNK_ROWS = 1000
# Beyond this many bad rows the report keeps only the count: a file with the wrong
# separator can make every one of 300,000 rows bad.
MAX_REPORTED_ERRORS = 500

SKU_MAX = Item._meta.get_field("sku").max_length or 100
NAME_MAX = Item._meta.get_field("name").max_length or 300

# The report is written in the language of who imports (the request's, the CLI's
# LANG, or the uploader's for a background import: catalog/background_import.py).
NOTHING_IMPORTED = gettext_lazy(
    "No se importó nada: corregí estas filas y volvé a subir el archivo."
)
SAVE_AS_CSV = gettext_lazy(
    "Abrilo en Excel y usá «Guardar como» → «CSV UTF-8 (delimitado por comas)»."
)

# Tried in order. UTF-8 first (the BOM, if any, is dropped by utf-8-sig); then what
# Excel on Windows in Argentina writes; latin-1 decodes any byte, so it comes last.
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
DELIMITERS = (",", ";", "\t")


class BinaryFile(Protocol):
    """What the import reads: a seekable binary file (open(..., "rb"), BytesIO, a
    Django upload)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


# ----- report ------------------------------------------------------------------------


@dataclass
class RowError:
    line: int
    sku: str
    reason: str


@dataclass
class ImportReport:
    """What an import found and did. `applied` is True only if it wrote."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # A problem with the file as a whole (not a CSV, wrong header...): nothing written.
    file_error: str = ""
    # Bad rows, in file order; at most MAX_REPORTED_ERRORS kept, `error_count` is all.
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    # Imported anyway, but the admin should know; capped like `errors`,
    # `warning_count` is all.
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    # Good rows not imported because their SKU names several items (`_match`); the
    # rest of the file is imported. Capped like `errors`, `ambiguous` is all.
    skipped: list[RowError] = field(default_factory=list)
    ambiguous: int = 0
    encoding: str = ""
    delimiter: str = ""
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.file_error and self.error_count == 0

    @property
    def errors_truncated(self) -> bool:
        return self.error_count > len(self.errors)

    def add_error(self, line: int, sku: str, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, sku, reason))

    def add_skipped(self, line: int, sku: str, reason: str) -> None:
        self.ambiguous += 1
        if len(self.skipped) < MAX_REPORTED_ERRORS:
            self.skipped.append(RowError(line, sku, reason))

    def add_warning(self, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_REPORTED_ERRORS:
            self.warnings.append(message)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ImportReport":
        errors = [RowError(**e) for e in data.get("errors", [])]
        skipped = [RowError(**e) for e in data.get("skipped", [])]
        return cls(**{**data, "errors": errors, "skipped": skipped})

    def summary(self) -> str:
        if self.file_error:
            return self.file_error
        if self.error_count:
            return _("%(nothing)s Filas con errores: %(count)s.") % {
                "nothing": NOTHING_IMPORTED,
                "count": self.error_count,
            }
        counts = {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "ambiguous": self.ambiguous,
        }
        if self.ambiguous:
            return (
                _(
                    "Importación lista: creados %(created)s, actualizados %(updated)s, "
                    "sin cambios %(unchanged)s, con SKU ambiguo %(ambiguous)s (no se importaron)."
                )
                % counts
            )
        return (
            _(
                "Importación lista: creados %(created)s, actualizados %(updated)s, "
                "sin cambios %(unchanged)s."
            )
            % counts
        )


# ----- reading -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    encoding: str
    delimiter: str
    # Position of each of COLUMNS in a row.
    positions: tuple[int, int, int, int]
    width: int


@dataclass(frozen=True)
class _Row:
    line: int
    # As stored (catalog.models.clean_sku), and as written in the file: an item
    # left with spaces by migration 0004 is found by its exact spelling.
    sku: str
    name: str
    stock: int
    price: Decimal
    raw_sku: str


class _FileProblem(Exception):
    """The file as a whole cannot be imported; the message says what to do."""


class _NoClose(io.RawIOBase):
    """Lets io.TextIOWrapper read any binary file-like (a Django upload, a BytesIO)
    without closing it when the wrapper is dropped: the second pass reads it again."""

    def __init__(self, f: BinaryFile) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._f.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _text(f: BinaryFile, encoding: str) -> io.TextIOWrapper:
    f.seek(0)
    # newline="" as the csv module wants: it sees "\r\n", "\n" and old-Mac "\r" alike.
    return io.TextIOWrapper(io.BufferedReader(_NoClose(f)), encoding=encoding, newline="")


def _sniff_binary(f: BinaryFile) -> None:
    f.seek(0)
    head = f.read(4096)
    f.seek(0)
    if not head.strip():
        raise _FileProblem(_("El archivo está vacío."))
    if head.startswith(b"PK\x03\x04"):
        raise _FileProblem(
            _("El archivo es un Excel (.xlsx), no un CSV. %(how)s") % {"how": SAVE_AS_CSV}
        )
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise _FileProblem(
            _("El archivo es un Excel antiguo (.xls), no un CSV. %(how)s") % {"how": SAVE_AS_CSV}
        )
    if head.startswith(b"%PDF"):
        raise _FileProblem(_("El archivo es un PDF, no un CSV. Exportá el catálogo como CSV."))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _FileProblem(
            _("El archivo está en formato «Texto Unicode» (UTF-16). %(how)s") % {"how": SAVE_AS_CSV}
        )
    if b"\x00" in head:
        raise _FileProblem(
            _("El archivo no es un CSV de texto (tiene datos binarios). %(how)s")
            % {"how": SAVE_AS_CSV}
        )


def _find_format(text: io.TextIOWrapper, encoding: str) -> tuple[_Format, int]:
    """Reads up to the header; returns the format and the header's line number."""
    line_no = 0
    for raw in text:
        line_no += 1
        if raw.strip().strip(",;\t"):
            break
    else:
        raise _FileProblem(_("El archivo está vacío."))

    found: list[str] = []
    for delimiter in DELIMITERS:
        cells = [c.strip().lower() for c in next(csv.reader([raw], delimiter=delimiter))]
        cells = [HEADER_ALIASES.get(c, c) for c in cells]
        # Excel leaves trailing empty columns ("sku;name;stock;wholesale_price;;").
        while cells and not cells[-1]:
            cells.pop()
        if len(cells) > len(found):
            found = cells
        if not set(COLUMNS) & set(cells):
            continue
        missing = [c for c in COLUMNS if c not in cells]
        unknown = [c for c in cells if c not in COLUMNS and c not in IGNORED_COLUMNS]
        repeated = sorted({c for c in cells if cells.count(c) > 1})
        if missing or unknown or repeated:
            parts = []
            if missing:
                parts.append(_("faltan las columnas %(columns)s") % {"columns": ", ".join(missing)})
            if unknown:
                parts.append(
                    _("no reconocemos las columnas %(columns)s")
                    % {"columns": ", ".join(f"«{c}»" for c in unknown)}
                )
            if repeated:
                parts.append(
                    _("hay columnas repetidas: %(columns)s") % {"columns": ", ".join(repeated)}
                )
            raise _FileProblem(
                _(
                    "El encabezado (línea %(line)s) no es el esperado: %(problems)s. "
                    "La primera fila tiene que ser: %(header)s"
                )
                % {"line": line_no, "problems": "; ".join(parts), "header": EXPECTED_HEADER}
            )
        sku_at, name_at, stock_at, price_at = (cells.index(c) for c in COLUMNS)
        fmt = _Format(encoding, delimiter, (sku_at, name_at, stock_at, price_at), len(cells))
        return fmt, line_no

    shown = raw.strip()
    if len(shown) > 80:
        shown = shown[:80] + "…"
    raise _FileProblem(
        _(
            "Falta el encabezado o no es el esperado. La primera fila tiene que ser: "
            "%(header)s (separado por comas o por punto y coma); en el archivo es «%(shown)s»."
        )
        % {"header": EXPECTED_HEADER, "shown": shown}
    )


def _records(f: BinaryFile, encoding: str) -> tuple[_Format, Iterator[tuple[int, list[str]]]]:
    """The file's format, and its data rows as (line number, cells)."""
    text = _text(f, encoding)
    fmt, header_line = _find_format(text, encoding)
    reader = csv.reader(text, delimiter=fmt.delimiter)
    reader_offset = header_line

    def rows() -> Iterator[tuple[int, list[str]]]:
        previous_end = 0
        try:
            for cells in reader:
                # The line a record starts on (a quoted name may span several lines).
                line = reader_offset + previous_end + 1
                previous_end = reader.line_num
                if not any(c.strip() for c in cells):
                    continue  # blank lines, or ";;;" rows Excel leaves at the end
                yield line, cells
        except csv.Error:
            # In practice: a quote opened and never closed swallowed the rest of the
            # file into one enormous cell.
            raise _FileProblem(
                _(
                    "El archivo no es un CSV válido cerca de la línea %(line)s: revisá que "
                    "no haya comillas sin cerrar."
                )
                % {"line": reader_offset + previous_end + 1}
            ) from None

    return fmt, rows()


def _parse_row(fmt: _Format, line: int, cells: list[str]) -> _Row | RowError:
    row = _parse_cells(fmt, line, cells)
    if isinstance(row, RowError) and any("\n" in c or "\r" in c for c in cells):
        # A quote opened and never closed makes one cell swallow the next lines.
        row.reason += " " + _("Una celda ocupa varias líneas: ¿hay comillas sin cerrar?")
    return row


def _parse_cells(fmt: _Format, line: int, cells: list[str]) -> _Row | RowError:
    if len(cells) < fmt.width:
        return RowError(
            line,
            cells[fmt.positions[0]].strip() if len(cells) > fmt.positions[0] else "",
            _("Faltan columnas: tiene %(count)s y se esperan %(width)s.")
            % {"count": len(cells), "width": fmt.width},
        )
    sku = clean_sku(cells[fmt.positions[0]])
    if any("\x00" in c for c in cells):
        # Binary data past the part of the file checked up front (PostgreSQL would
        # refuse it in a text column, failing the whole import).
        return RowError(
            line,
            sku.replace("\x00", ""),
            _("La fila tiene caracteres nulos (datos binarios). %(how)s") % {"how": SAVE_AS_CSV},
        )
    if any(c.strip() for c in cells[fmt.width :]):
        if fmt.delimiter == ",":
            said = _(
                "Tiene más columnas que el encabezado (%(count)s). ¿Un precio con coma "
                "decimal sin comillas? Usá punto para los centavos o separá las columnas "
                "con punto y coma."
            )
        else:
            said = _("Tiene más columnas que el encabezado (%(count)s). ¿Hay un separador de más?")
        return RowError(line, sku, said % {"count": len(cells)})
    name = cells[fmt.positions[1]].strip()
    reasons: list[str] = []
    if not sku:
        reasons.append(_("Falta el SKU."))
    elif len(sku) > SKU_MAX:
        reasons.append(
            _("El SKU tiene %(length)s caracteres (máximo %(max)s).")
            % {"length": len(sku), "max": SKU_MAX}
        )
    if not name:
        reasons.append(_("Falta el nombre."))
    elif len(name) > NAME_MAX:
        reasons.append(
            _("El nombre tiene %(length)s caracteres (máximo %(max)s).")
            % {"length": len(name), "max": NAME_MAX}
        )
    stock = price = None
    try:
        stock = parse_stock(cells[fmt.positions[2]])
    except QuantityError as e:
        reasons.append(str(e))
    try:
        price = parse_price(cells[fmt.positions[3]])
    except QuantityError as e:
        reasons.append(str(e))
    if reasons or stock is None or price is None:
        return RowError(line, sku, " ".join(reasons))
    return _Row(line, sku, name, stock, price, raw_sku=cells[fmt.positions[0]])


# ----- pass 1: validate ----------------------------------------------------------------


@dataclass(frozen=True)
class _Spelling:
    """One row's SKU, for rows whose key other rows of the file share."""

    raw: str
    sku: str
    line: int


# sku_key -> every row with that key, for keys written more than once in the file.
_SharedKeys = dict[str, list[_Spelling]]


def _check(f: BinaryFile, encoding: str, report: ImportReport) -> tuple[_Format, _SharedKeys]:
    fmt, records = _records(f, encoding)
    # SKU as written -> its first line: an exact repeat is an error.
    lines: dict[str, int] = {}
    # sku_key -> (SKU as written, first line): keys written several ways ("ACE-1",
    # "ace-1"), which pass 2 resolves by exact SKU or skips (`_match`).
    seen: dict[str, tuple[str, int]] = {}
    shared: _SharedKeys = {}
    for line, cells in records:
        report.rows += 1
        row = _parse_row(fmt, line, cells)
        if isinstance(row, RowError):
            report.add_error(row.line, row.sku, row.reason)
            continue
        repeated = lines.setdefault(row.raw_sku, line)
        if repeated != line:
            report.add_error(
                line,
                row.sku,
                _("SKU repetido: «%(sku)s» está en las líneas %(first)s y %(line)s.")
                % {"sku": row.sku, "first": repeated, "line": line},
            )
            continue
        key = sku_key(row.sku)
        first = seen.get(key)
        if first is None:
            seen[key] = (row.raw_sku, line)
        else:
            spellings = shared.setdefault(key, [_Spelling(first[0], clean_sku(first[0]), first[1])])
            spellings.append(_Spelling(row.raw_sku, row.sku, line))
    if report.rows == 0:
        raise _FileProblem(_("El archivo tiene el encabezado pero ningún producto."))
    return fmt, shared


def _validate(f: BinaryFile) -> tuple[ImportReport, _Format | None, _SharedKeys]:
    """Pass 1 over each encoding in turn; the format is None if nothing may be written."""
    try:
        _sniff_binary(f)
        for encoding in ENCODINGS:
            report = ImportReport()
            try:
                fmt, shared = _check(f, encoding, report)
            except UnicodeDecodeError:
                continue  # not this encoding: start over with the next one
            report.encoding, report.delimiter = fmt.encoding, fmt.delimiter
            return report, (fmt if report.ok else None), shared
        raise _FileProblem(
            _("No pudimos leer el texto del archivo. %(how)s") % {"how": SAVE_AS_CSV}
        )
    except _FileProblem as e:
        return ImportReport(file_error=_("No se importó nada. %(why)s") % {"why": e}), None, {}


def check_csv(f: BinaryFile) -> ImportReport:
    """Validate the whole file without touching the database (nothing is written).

    `f` is a seekable binary file. The report has the rows count, `file_error` and
    the bad rows; created/updated/unchanged stay 0.
    """
    return _validate(f)[0]


# ----- pass 2: apply -------------------------------------------------------------------


def _chunks(f: BinaryFile, fmt: _Format) -> Iterator[list[_Row]]:
    _format, records = _records(f, fmt.encoding)
    chunk: list[_Row] = []
    for line, cells in records:
        row = _parse_row(fmt, line, cells)
        # Pass 1 accepted every row, so this holds unless the file changed under us.
        if isinstance(row, RowError):
            raise _FileProblem(
                _("El archivo cambió durante la importación (línea %(line)s).") % {"line": line}
            )
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Stored(NamedTuple):
    """An existing item, as the import compares it (a tuple: one per row of a
    300,000-row file)."""

    pk: int
    sku: str
    name: str
    stock: int
    price: Decimal


def _quoted(skus: list[str], limit: int = 5) -> str:
    shown = ", ".join(_("«%(sku)s»") % {"sku": sku} for sku in skus[:limit])
    if len(skus) <= limit:
        return shown
    return _("%(shown)s y %(more)s más") % {"shown": shown, "more": len(skus) - limit}


def _match(
    row: _Row, candidates: list[_Stored], spellings: list[_Spelling]
) -> _Stored | str | None:
    """The item `row` updates, None to create one, or why the row is ambiguous.

    `candidates` are the store's items with the row's sku_key, `spellings` the
    file's rows with that key when there are several. The item is the one whose
    SKU is the row's exactly (as written, then without surrounding spaces); else
    the only item with that key. Two rows of the file with one key, or a key
    naming several items, are ambiguous unless the exact SKU decides: the row is
    skipped rather than guessed, and never creates a near-duplicate.
    """
    if not spellings and len(candidates) <= 1:
        return candidates[0] if candidates else None  # nearly every row
    for item in candidates:
        if item.sku == row.raw_sku:
            return item
    others = [s for s in spellings if s.line != row.line]
    if not any(other.sku == row.sku for other in others):
        for item in candidates:
            if item.sku == row.sku:
                return item
    if others:
        lines = ", ".join(
            _("«%(sku)s» (línea %(line)s)") % {"sku": o.raw, "line": o.line} for o in others[:5]
        )
        return ngettext(
            "El archivo también tiene %(lines)s, que difiere de «%(sku)s» sólo en mayúsculas "
            "o espacios: sería el mismo producto y no se importó esta fila. Dejá una sola "
            "fila por producto, con el SKU escrito como en el catálogo.",
            "El archivo también tiene %(lines)s, que difieren de «%(sku)s» sólo en mayúsculas "
            "o espacios: sería el mismo producto y no se importó esta fila. Dejá una sola "
            "fila por producto, con el SKU escrito como en el catálogo.",
            len(others),
        ) % {"lines": lines, "sku": row.raw_sku}
    # Only this row has its key in the file (`others` is empty), and the fast path
    # above did not decide: several items share it.
    return _(
        "La tienda tiene %(count)s productos cuyo SKU difiere de «%(sku)s» sólo "
        "en mayúsculas o espacios (%(skus)s): no "
        "sabemos cuál actualizar y no se tocó ninguno. Escribí el SKU exactamente como "
        "el del producto que querés actualizar."
    ) % {
        "count": len(candidates),
        "sku": row.sku,
        "skus": _quoted(sorted(i.sku for i in candidates)),
    }


def _apply_chunk(
    rows: list[_Row],
    report: ImportReport,
    store: Store,
    writer: CatalogWriter,
    shared: _SharedKeys,
    *,
    at: datetime,
    user: Any,
) -> None:
    # The store's items with the rows' keys, by the (store, sku_key) index. order_by()
    # drops Item's default ordering, which would steer SQLite (without ANALYZE
    # statistics) to walk the SKU index of the whole store instead. select_for_update:
    # on PostgreSQL an ERP update cannot change these rows between this read and our
    # write (SQLite already holds the database's write lock).
    found = (
        Item.objects.select_for_update()
        .filter(item_in("sku_key", list({sku_key(r.sku) for r in rows})), store=store)
        .order_by()
        .values_list("sku_key", "id", "sku", "name", "stock", "wholesale_price")
    )
    by_key: dict[str, list[_Stored]] = defaultdict(list)
    for key, pk, sku, name, stock, price in found:
        by_key[key].append(_Stored(pk, sku, name, stock, price))

    to_create: list[_Row] = []
    to_update: list[tuple[int, str, str, int, Decimal]] = []
    # Same name: only stock and price are written, so the search text and its
    # index entry are left alone (most rows of a price list).
    to_reprice: list[tuple[int, int, Decimal]] = []
    history: list[Change] = []
    for row in rows:
        key = sku_key(row.sku)
        current = _match(row, by_key.get(key, []), shared.get(key, []))
        if current is None:
            to_create.append(row)
            continue
        if isinstance(current, str):
            report.add_skipped(row.line, row.sku, current)
            continue
        # Most rows of a re-imported list are unchanged: skip building an Item for them.
        if (current.name, current.stock, current.price) == (row.name, row.stock, row.price):
            report.unchanged += 1
            continue
        item = Item(
            pk=current.pk,
            store=store,
            sku=current.sku,
            name=current.name,
            stock=current.stock,
            wholesale_price=current.price,
        )
        change = change_for(
            item,
            new_stock=row.stock,
            new_price=row.price,
            source=ChangeSource.CSV,
            at=at,
            actor=writer.actor,
            user=user,
        )
        if current.name == row.name:
            to_reprice.append((current.pk, row.stock, row.price))
        else:
            # The item keeps its SKU as stored: the file names it, it does not rename it.
            to_update.append((current.pk, current.sku, row.name, row.stock, row.price))
        if change is not None:
            history.append(
                (current.pk, change.old_stock, change.new_stock, change.old_price, change.new_price)
            )
        report.updated += 1

    if to_create:
        ids = writer.create_items([(r.sku, r.name, r.stock, r.price) for r in to_create])
        report.created += len(to_create)
        # A created item's first history row says where its stock and price came from
        # (no old values).
        history.extend((ids[r.sku], None, r.stock, None, r.price) for r in to_create)
    if to_update:
        writer.update_items(to_update)
    if to_reprice:
        writer.set_stock_and_price(to_reprice)
    if history:
        writer.add_history(history)


def import_csv(
    store: Store, f: BinaryFile, *, actor: str, user: Any = None, at: datetime | None = None
) -> ImportReport:
    """Validate the whole file and, only if every row is good, apply it.

    `f` is a seekable binary file: it is streamed twice, once to validate and once
    to write. `actor` is the readable name kept in each history row, `user` the
    panel user if any. All rows are written in one transaction, or none: on any
    problem `report.applied` is False and `file_error`/`errors` say why.
    """
    report, fmt, shared = _validate(f)
    if fmt is None:
        return report
    at = at or timezone.now()
    file_warnings, warning_count = list(report.warnings), report.warning_count
    try:
        with transaction.atomic():
            writer = CatalogWriter(
                store.pk,
                at=at,
                source=ChangeSource.CSV,
                actor=actor,
                user_id=getattr(user, "pk", None),
            )
            writer.lock_store()
            for rows in _chunks(f, fmt):
                _apply_chunk(rows, report, store, writer, shared, at=at, user=user)
    except (IntegrityError, _FileProblem) as e:
        report.created = report.updated = report.unchanged = report.ambiguous = 0
        report.skipped = []
        report.warnings, report.warning_count = file_warnings, warning_count
        report.file_error = (
            _("No se importó nada. %(why)s") % {"why": e}
            if isinstance(e, _FileProblem)
            else _(
                "No se importó nada: el catálogo cambió mientras se importaba (otro proceso "
                "creó alguno de estos SKU). Volvé a subir el archivo."
            )
        )
        return report
    report.applied = True
    return report
