"""The panel's spreadsheet downloads in a real browser: the catalog and a run's
changes, as Excel (XLSX) and as the Excel-Argentina CSV. Chromium saves each file;
the test opens it as a spreadsheet would."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.urls import reverse

from catalog.models import ChangeSource, Item, ItemChange
from erp.models import Run, RunStatus
from stores.models import Store
from tests.browser.conftest import log_in
from tests.erp.sync_helpers import make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def download(page: Any, link_name: str, tmp_path: Path) -> Path:
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name, exact=True).first.click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    return saved


def test_admin_downloads_the_catalog_and_a_run_for_excel(
    page: Any, live_server: Any, admin_user: Any, store: Store, tmp_path: Path
) -> None:
    make_items(store, [("ACE-0001", 12, "18250.50")], names={"ACE-0001": "Aceite ñ"})
    item = Item.objects.get(store=store)
    run = Run.objects.create(store=store, kind="nonsistemas", status=RunStatus.SUCCEEDED)
    ItemChange.objects.create(
        store=store,
        item=item,
        run=run,
        at=datetime(2026, 3, 2, 15, 30, tzinfo=UTC),
        source=ChangeSource.ERP,
        old_stock=3,
        new_stock=12,
        old_price=Decimal("1234.56"),
        new_price=Decimal("18250.50"),
    )
    log_in(page, live_server.url, admin_user.email)

    workbook = download(page, "Exportar Excel", tmp_path)
    assert workbook.suffix == ".xlsx"
    rows = list(openpyxl.load_workbook(workbook).active.iter_rows(values_only=True))
    assert rows[1][:4] == ("ACE-0001", "Aceite ñ", 12, 18250.5)

    csv_file = download(page, "Exportar CSV", tmp_path)
    assert csv_file.read_bytes().startswith(b"\xef\xbb\xbfSKU;Nombre;")
    assert ";12;18250,50;" in csv_file.read_text(encoding="utf-8-sig")

    page.goto(live_server.url + reverse("erp:run", args=[store.slug, run.pk]))
    changes = download(page, "Descargar Excel", tmp_path)
    assert changes.name == f"actualizacion-{run.pk}-cambios.xlsx"
    rows = list(openpyxl.load_workbook(changes).active.iter_rows(values_only=True))
    assert rows[1][:6] == ("ACE-0001", "Aceite ñ", 3, 12, 1234.56, 18250.5)
    assert rows[1][6] == datetime(2026, 3, 2, 12, 30)  # the store's time
