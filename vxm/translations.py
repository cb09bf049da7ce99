"""The English message catalog: extract, check, update and compile it without
GNU gettext.

Spanish is the source language (the msgids are the Spanish text), so English is
the only catalog: locale/en/LC_MESSAGES/django.po. Its compiled .mo is not kept in
git; `scripts/bootstrap` compiles it (`python -m vxm.translations compile`) with
Babel, so neither the demo nor the tests need `msgfmt`.

Extraction does what `makemessages` does, in Python: templates go through
Django's own `templatize` (the function makemessages feeds to xgettext) and the
result, like the Python sources, through Babel's Python extractor. The test that
every string is translated (tests/test_translations.py) and `scripts/messages`
use the same `extract()`, so they cannot disagree about what needs translating.

    python -m vxm.translations update   # add new msgids to the .po, drop gone ones
    python -m vxm.translations check    # exit 1 listing untranslated or fuzzy msgids
    python -m vxm.translations compile  # .po -> .mo
"""

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_python
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

BASE_DIR = Path(__file__).resolve().parent.parent
# The product's own code; tests, the NonSistemas stand-in (a fake ERP, not the
# product) and migrations say nothing to a person using the panel.
SOURCE_DIRS = ("vxm", "stores", "catalog", "erp")
SKIPPED_PARTS = {"migrations", "__pycache__", "static"}
PO_PATH = BASE_DIR / "locale" / "en" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")

# Django's translation functions, as Babel's extractor names their arguments:
# None for a single msgid, (1, 2) for singular and plural, "c" for a context.
KEYWORDS: dict[str, object] = {
    "_": None,
    "gettext": None,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "npgettext_lazy": ((1, "c"), 2, 3),
}


@dataclass(frozen=True)
class Message:
    msgid: str | tuple[str, str]
    context: str | None
    where: str  # "path:line", for the report of what is missing


def _source_files() -> Iterator[Path]:
    for top in SOURCE_DIRS:
        for path in sorted((BASE_DIR / top).rglob("*")):
            if SKIPPED_PARTS & set(path.relative_to(BASE_DIR).parts):
                continue
            if path.suffix in {".py", ".html", ".txt"} and path.is_file():
                yield path


def extract() -> list[Message]:
    """Every translatable string in the product's Python files and templates."""
    from django.utils.translation.template import templatize

    found = []
    for path in _source_files():
        text = path.read_text(encoding="utf-8")
        if path.suffix != ".py":
            # templatize keeps the template's lines, with its text blanked out and
            # each translatable string as a gettext() call; xgettext reads it
            # leniently, Python's tokenizer does not like its indentation.
            text = "\n".join(
                line.lstrip() for line in templatize(text, origin=str(path)).splitlines()
            )
        where = path.relative_to(BASE_DIR)
        for lineno, func, msg, _comments in _extract_python(text):
            context = None
            if isinstance(msg, tuple) and func.startswith(("pgettext", "npgettext")):
                context, msg = msg[0], msg[1:]
            if isinstance(msg, tuple):
                parts = tuple(part for part in msg if part is not None)
                msgid: str | tuple[str, str] = parts[0] if len(parts) == 1 else (parts[0], parts[1])
            else:
                msgid = msg
            if msgid:
                found.append(Message(msgid, context, f"{where}:{lineno}"))
    return found


def _extract_python(text: str) -> Iterator[Any]:
    # (line, function, msgid or (msgid, plural, ...), comments)
    yield from extract_python(io.BytesIO(text.encode("utf-8")), KEYWORDS, [], {})  # type: ignore[arg-type]


def _key(msgid: str | tuple[str, str]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def read_catalog(path: Path = PO_PATH) -> Catalog:
    if not path.exists():
        return Catalog(locale="en", domain="django")
    with path.open("rb") as handle:
        return read_po(handle, locale="en", domain="django")


def problems(catalog: Catalog | None = None, messages: list[Message] | None = None) -> list[str]:
    """Each msgid in the code that English lacks, leaves empty or marks fuzzy."""
    catalog = catalog if catalog is not None else read_catalog()
    messages = messages if messages is not None else extract()
    found = []
    seen: set[tuple[str, str | None]] = set()
    for message in messages:
        key = (_key(message.msgid), message.context)
        if key in seen:
            continue
        seen.add(key)
        entry = catalog.get(key[0], context=message.context)
        if entry is None:
            found.append(f"{message.where}: not in the English catalog: {key[0]!r}")
        elif entry.fuzzy:
            found.append(f"{message.where}: fuzzy in the English catalog: {key[0]!r}")
        elif not entry.string or (isinstance(entry.string, tuple | list) and not all(entry.string)):
            found.append(f"{message.where}: untranslated: {key[0]!r}")
    return found


def update() -> Catalog:
    """The .po with every msgid of the code (new ones empty), none that is gone."""
    template = Catalog(locale="en", domain="django")
    for message in extract():
        template.add(message.msgid, context=message.context, locations=[(message.where, 0)])
    catalog = read_catalog()
    created = catalog.creation_date
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    # Stable output, so parallel branches merge: locations in file order, and the
    # header's date left alone (it would change on every run).
    catalog.creation_date = created
    for entry in catalog:
        entry.locations = sorted(set(entry.locations))
    PO_PATH.parent.mkdir(parents=True, exist_ok=True)
    with PO_PATH.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=False)
    return catalog


def compiled(catalog: Catalog | None = None) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog if catalog is not None else read_catalog(), use_fuzzy=False)
    return buffer.getvalue()


def compile_catalog() -> None:
    MO_PATH.write_bytes(compiled())


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "compile":
        compile_catalog()
        return 0
    if command in {"check", "update"}:
        if command == "update":
            update()
        missing = problems()
        for line in missing:
            print(line, file=sys.stderr)
        if missing:
            print(
                f"{len(missing)} message(s) to translate in {PO_PATH.relative_to(BASE_DIR)}",
                file=sys.stderr,
            )
        return 1 if missing else 0
    print("usage: python -m vxm.translations update|check|compile", file=sys.stderr)
    return 2


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vxm.settings")
    django.setup()
    sys.exit(main(sys.argv))
