"""Reports that open right in a spreadsheet: XLSX with typed cells, and CSV the way
Excel in the reader's language expects it.

Used by the run's changes and issues downloads (erp/reports.py) and the catalog
export (catalog/export.py). Each report is a list of `Column`s plus an iterator of
rows of Python values (str, int, Decimal, aware datetime, None); this module turns
them into cells. How numbers, dates and the separator look is a `ReportLocale`:
Spanish (Argentina) and English, chosen by `report_locale()` from the active
language (the person's, or the CLI's: vxm/cli.py).
"""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import IO, Any, Literal

import xlsxwriter
from django.http import FileResponse, StreamingHttpResponse
from django.utils import translation
from django.utils.functional import Promise

CellKind = Literal["text", "int", "money", "datetime"]

# Spreadsheets run a cell that starts with one of these as a formula; SKUs, names
# and codes come from the ERP, so a hostile value could otherwise execute in the
# admin's Excel (OWASP "CSV injection"). XLSX cells are written as strings, never
# formulas, so only the CSV needs this.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


@dataclass(frozen=True)
class ReportLocale:
    """How a report is written for people who read one language."""

    language: str
    csv_delimiter: str
    decimal_separator: str
    # strftime for dates in the CSV: a form Excel in that language parses as a date.
    csv_datetime: str
    # XLSX number formats are stored language-neutral ("#,##0.00" shows as
    # 1.234,56 in a Spanish Excel), but the date order is not.
    xlsx_datetime: str


SPANISH = ReportLocale(
    language="es",
    csv_delimiter=";",
    decimal_separator=",",
    csv_datetime="%d/%m/%Y %H:%M:%S",
    xlsx_datetime="dd/mm/yyyy hh:mm:ss",
)
# Comma and point, as Excel in English reads a CSV. ISO dates: Excel in any English
# locale parses them as dates, where 04/12/2026 means April to some and December
# to others. The BOM stays: without it Excel reads the names' accents as
# Windows-1252.
ENGLISH = ReportLocale(
    language="en",
    csv_delimiter=",",
    decimal_separator=".",
    csv_datetime="%Y-%m-%d %H:%M:%S",
    xlsx_datetime="yyyy-mm-dd hh:mm:ss",
)
XLSX_MONEY = "#,##0.00"
XLSX_INTEGER = "0"


def report_locale() -> ReportLocale:
    """The locale reports are written in: the active language's."""
    return ENGLISH if (translation.get_language() or "").startswith("en") else SPANISH


@dataclass(frozen=True)
class Column:
    # Usually gettext_lazy: a module-level column list is translated when written.
    header: str | Promise
    kind: CellKind = "text"
    width: float = 14
    # Escape a leading formula character in the CSV (values that came from the ERP).
    guard_formula: bool = True


def _csv_cell(value: Any, column: Column, locale: ReportLocale, tz: tzinfo) -> str:
    if value is None:
        return ""
    if column.kind == "money":
        return f"{Decimal(value):.2f}".replace(".", locale.decimal_separator)
    if column.kind == "datetime":
        return value.astimezone(tz).strftime(locale.csv_datetime)
    if column.kind == "int":
        return str(value)
    text = str(value)
    if column.guard_formula and text.startswith(FORMULA_STARTS):
        return f"'{text}"
    return text


def iter_csv(
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    tz: tzinfo,
    locale: ReportLocale = SPANISH,
    *,
    batch: int = 500,
) -> Iterator[str]:
    """The CSV text in pieces, starting with a UTF-8 BOM (without it Excel reads the
    accents as Windows-1252)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=locale.csv_delimiter, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([str(c.header) for c in columns])
    for count, row in enumerate(rows, 1):
        writer.writerow(
            [
                _csv_cell(value, column, locale, tz)
                for value, column in zip(row, columns, strict=True)
            ]
        )
        if count % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def write_xlsx(
    target: IO[bytes] | str,
    sheet_name: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    tz: tzinfo,
    locale: ReportLocale = SPANISH,
) -> None:
    """Writes an XLSX workbook of one sheet: numbers as numbers, dates as dates (in
    the store's zone, naive: Excel has no zones), the header frozen.

    constant_memory flushes each row to a temporary file once the next one starts,
    so 300,000 rows take no more memory than a few.
    """
    workbook = xlsxwriter.Workbook(target, {"constant_memory": True, "strings_to_formulas": False})
    try:
        sheet = workbook.add_worksheet(sheet_name[:31])
        bold = workbook.add_format({"bold": True})
        formats = {
            "money": workbook.add_format({"num_format": XLSX_MONEY}),
            "int": workbook.add_format({"num_format": XLSX_INTEGER}),
            "datetime": workbook.add_format({"num_format": locale.xlsx_datetime}),
        }
        for index, column in enumerate(columns):
            sheet.set_column(index, index, column.width)
            sheet.write_string(0, index, str(column.header), bold)
        sheet.freeze_panes(1, 0)
        for row_index, row in enumerate(rows, 1):
            for index, (value, column) in enumerate(zip(row, columns, strict=True)):
                if value is None:
                    continue
                if column.kind == "money":
                    # An XLSX number is a binary double whatever we do; the 2-decimal
                    # format shows it as the exact price.
                    sheet.write_number(row_index, index, float(value), formats["money"])
                elif column.kind == "int":
                    sheet.write_number(row_index, index, value, formats["int"])
                elif column.kind == "datetime":
                    moment: datetime = value.astimezone(tz).replace(tzinfo=None)
                    sheet.write_datetime(row_index, index, moment, formats["datetime"])
                else:
                    sheet.write_string(row_index, index, str(value))
    finally:
        workbook.close()


def xlsx_tempfile(
    sheet_name: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    tz: tzinfo,
    locale: ReportLocale = SPANISH,
) -> IO[bytes]:
    """The workbook in an anonymous temporary file, rewound, for a FileResponse: a
    zip cannot be streamed while it is written, and a big one should not sit in
    memory."""
    f = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it
    try:
        write_xlsx(f, sheet_name, columns, rows, tz, locale)
    except BaseException:
        f.close()
        raise
    f.seek(0)
    return f


def csv_response(
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    tz: tzinfo,
    locale: ReportLocale,
    filename: str,
) -> StreamingHttpResponse:
    """A download of the CSV, streamed as it is written."""
    response = StreamingHttpResponse(
        iter_csv(columns, rows, tz, locale), content_type=CSV_CONTENT_TYPE
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_response(
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    tz: tzinfo,
    locale: ReportLocale,
    sheet_name: str,
    filename: str,
) -> FileResponse:
    """A download of the workbook (written to a temporary file first)."""
    return FileResponse(
        xlsx_tempfile(sheet_name, columns, rows, tz, locale),
        as_attachment=True,
        filename=filename,
        content_type=XLSX_CONTENT_TYPE,
    )
