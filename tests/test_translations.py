"""The English catalog is complete, compiled and current; the CLI speaks LANG.

Spanish is the source language (msgids are the Spanish text), so "translated"
means: every msgid of the product's templates and Python has a non-empty, non-fuzzy
English entry in locale/en/LC_MESSAGES/django.po, and the compiled .mo that Django
reads is the .po as it is now.
"""

import os
import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog

from vxm import translations
from vxm.cli import cli_language

ROOT = Path(__file__).resolve().parent.parent


def test_every_string_in_templates_and_python_has_an_english_translation() -> None:
    missing = translations.problems()
    assert not missing, "Run scripts/messages and translate:\n" + "\n".join(missing)


def test_extraction_finds_template_and_python_strings_with_their_plurals() -> None:
    found = {m.msgid for m in translations.extract()}
    # A {% translate %} in a template, a gettext_lazy model label, a plural
    # {% blocktranslate count %} and an ngettext in Python.
    assert "Verificar conexión" in found
    assert "Completada con avisos" in found
    assert ("%(count)s producto", "%(count)s productos") in found
    assert ("%(count)s recibido", "%(count)s recibidos") in found


def test_a_new_untranslated_or_fuzzy_string_is_reported() -> None:
    catalog = Catalog(locale="en")
    catalog.add("Guardar", "Save")
    catalog.add("Buscar", "Search", flags=["fuzzy"])
    messages = [
        translations.Message("Guardar", None, "a.html:1"),
        translations.Message("Buscar", None, "a.html:2"),
        translations.Message("Nuevo texto", None, "b.py:3"),
    ]
    problems = translations.problems(catalog, messages)
    assert problems == [
        "a.html:2: fuzzy in the English catalog: 'Buscar'",
        "b.py:3: not in the English catalog: 'Nuevo texto'",
    ]


def test_the_compiled_catalog_is_the_current_po() -> None:
    assert translations.MO_PATH.exists(), "Run scripts/bootstrap: it compiles the catalog."
    assert translations.MO_PATH.read_bytes() == translations.compiled(), (
        "locale/en/LC_MESSAGES/django.mo is older than the .po: run scripts/bootstrap."
    )


def test_cli_language_follows_vxm_language_then_lang() -> None:
    assert cli_language({"LANG": "en_US.UTF-8"}) == "en"
    assert cli_language({"LANG": "en_GB.utf8"}) == "en"
    assert cli_language({"LANG": "es_AR.UTF-8"}) == "es-ar"
    assert cli_language({}) == "es-ar"
    assert cli_language({"LANG": "C.UTF-8"}) == "es-ar"
    assert cli_language({"LANG": "en_US.UTF-8", "VXM_LANGUAGE": "es"}) == "es-ar"
    assert cli_language({"LANG": "es_AR.UTF-8", "VXM_LANGUAGE": "en"}) == "en"


def _vxm_help(lang: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"VXM_LANGUAGE", "LC_ALL"}}
    env["LANG"] = lang
    return subprocess.run(
        [sys.executable, "-m", "vxm", "--help"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def test_the_cli_speaks_english_with_an_english_lang_and_spanish_otherwise() -> None:
    english = _vxm_help("en_US.UTF-8")
    assert english.startswith("Usage: vxm <command> [options]")
    assert "VentasxMayor commands:" in english
    spanish = _vxm_help("es_AR.UTF-8")
    assert spanish.startswith("Uso: vxm <comando> [opciones]")
    assert "Comandos de VentasxMayor:" in spanish
