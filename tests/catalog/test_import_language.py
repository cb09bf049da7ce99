"""A CSV import's report reaches an English-speaking admin in English: at once
for a small file, and from the background task for a large one (written in the
uploader's language). A Spanish admin keeps reading it in Spanish."""

from typing import Any

import pytest
from django.test import Client

from catalog.background_import import run_queued_import
from catalog.models import CatalogImport, ImportStatus
from stores.models import Store
from tests.catalog.conftest import MakeItem, snapshot, upload
from tests.catalog.test_import import HEADER
from tests.test_language import login
from vxm.models import UserPreference

# A repeated SKU (with stray spaces, accents and "+ % #") and a row without a name.
BAD = (
    HEADER
    + "ACE-+10%#1 ,Aceite de girasol 900 ml,8,1250.50\n"
    + "ACE-+10%#1 ,Aceite de girasol 900 ml,9,1250.50\n"
    + "TOR-Ñ1,,3,10\n"
)


def _client_in(language: str, user: Any) -> Client:
    UserPreference.objects.update_or_create(user=user, defaults={"language": language})
    client = Client()
    login(client, user)
    return client


def test_an_english_admin_reads_a_csv_import_error_in_english(
    store: Store, admin_user: Any
) -> None:
    before = snapshot(store)
    page = upload(_client_in("en", admin_user), store, BAD)
    assert page.status_code == 200
    report = page.context["report"]
    assert not report.applied
    assert [(e.line, e.reason) for e in report.errors] == [
        (3, "Repeated SKU: “ACE-+10%#1” is on lines 2 and 3."),
        (4, "The name is missing."),
    ]
    assert "Repeated SKU: “ACE-+10%#1” is on lines 2 and 3." in page.text
    assert "SKU repetido" not in page.text and "Falta el nombre" not in page.text
    assert snapshot(store) == before  # nothing written


def test_a_spanish_admin_reads_it_in_spanish(store: Store, admin_user: Any) -> None:
    report = upload(_client_in("es-ar", admin_user), store, BAD).context["report"]
    assert [e.reason for e in report.errors] == [
        "SKU repetido: «ACE-+10%#1» está en las líneas 2 y 3.",
        "Falta el nombre.",
    ]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "The store has 2 products whose SKU differs from “Ace-1” only in capitals or "
            "spaces (“ACE-1”, “ace-1”)",
        ),
        (
            "es-ar",
            "La tienda tiene 2 productos cuyo SKU difiere de «Ace-1» sólo en mayúsculas o "
            "espacios («ACE-1», «ace-1»)",
        ),
    ],
)
def test_a_background_import_reports_in_the_uploaders_language(
    store: Store, admin_user: Any, make_item: MakeItem, settings: Any, language: str, expected: str
) -> None:
    settings.VXM_CSV_INLINE_BYTES = 10  # every file goes to the background
    make_item("ace-1", "Aceite de girasol")
    make_item("ACE-1 ", "Aceite de girasol (caja)")
    client = _client_in(language, admin_user)
    upload(client, store, HEADER + "Ace-1,Aceite de girasol 900 ml,8,1250.50\n")
    job = run_queued_import(CatalogImport.objects.get().pk)  # the worker: no request
    assert job.status == ImportStatus.DONE
    assert job.report is not None
    (skipped,) = job.report["skipped"]
    assert skipped["reason"].startswith(expected), skipped["reason"]
