"""One SKU rule (issue 9): surrounding whitespace is never part of a SKU, and a CSV
row finds its item by the key ERP codes are matched by, or says why it cannot."""

import contextlib
import importlib
import io
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client

from catalog.csv_import import import_csv
from catalog.models import Item, ambiguous_groups, search_text, sku_key
from stores.models import Store
from tests.catalog.conftest import MakeItem, snapshot, upload

HEADER = "sku,name,stock,wholesale_price\n"
migration = importlib.import_module("catalog.migrations.0004_sku_rule_search_text")


def run(store: Store, content: str) -> Any:
    return import_csv(store, io.BytesIO(content.encode()), actor="test")


def stored(store: Store) -> dict[str, tuple[str, int, Decimal]]:
    rows = Item.objects.filter(store=store).values_list("sku", "name", "stock", "wholesale_price")
    return {sku: (name, stock, price) for sku, name, stock, price in rows}


def legacy(item: Item, sku: str) -> None:
    """Give `item` a SKU the way data from before the rule had it (a column write
    bypasses the rule); its key as migration 0004 recomputes it."""
    Item.objects.filter(pk=item.pk).update(sku=sku, sku_key=sku_key(sku))


# ----- stored without surrounding whitespace, everywhere -------------------------------


def test_save_and_bulk_create_store_the_sku_without_surrounding_whitespace(store: Store) -> None:
    saved = Item.objects.create(store=store, sku=" \u00a0ACE-1\t", name="Aceite", wholesale_price=1)
    [bulk] = Item.objects.bulk_create(
        [Item(store=store, sku="  Azúcar 1 kg ", name="Azúcar", wholesale_price=1)]
    )

    assert sorted(stored(store)) == ["ACE-1", "Azúcar 1 kg"]
    bulk = Item.objects.get(pk=bulk.pk)
    assert (bulk.sku_key, bulk.search_text) == ("azúcar 1 kg", "azucar 1 kg\nazucar")
    assert Item.objects.get(pk=saved.pk).sku_key == "ace-1"


def test_a_csv_row_with_spaces_around_the_sku_creates_it_without_them(store: Store) -> None:
    report = run(store, HEADER + '"  GAL-0153 ",Galletitas,3,10\n')
    assert report.created == 1
    assert list(stored(store)) == ["GAL-0153"]


@pytest.mark.parametrize("char", ["ß", "ﬄ", "İ"])
def test_a_100_character_sku_whose_key_is_longer_is_stored(
    admin_client: Client, store: Store, char: str
) -> None:
    # casefold() makes "ß" "ss" and "ﬄ" "ffl": the key has up to 300 characters,
    # which PostgreSQL's column must hold (it used to refuse it with a 500).
    sku = char * 100
    response = upload(admin_client, store, HEADER + f"{sku},Raro,1,1\n")

    assert response.status_code == 200
    assert response.context["report"].created == 1
    item = Item.objects.get(store=store)
    assert (item.sku, item.sku_key) == (sku, sku.casefold())
    assert len(item.sku_key) == len(sku.casefold()) > 100


def test_a_sku_longer_than_100_characters_is_refused_clearly(store: Store) -> None:
    report = run(store, HEADER + f"{'A' * 101},Largo,1,1\n")
    assert not report.applied
    assert report.errors[0].reason == "El SKU tiene 101 caracteres (máximo 100)."


# ----- CSV rows find items by key ------------------------------------------------------


def test_a_row_updates_the_item_with_its_key_and_keeps_the_stored_spelling(
    store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-0013", "Aceite", stock=1, price="10.00")

    report = run(store, HEADER + " ace-0013 ,Aceite,5,12\n")

    assert (report.created, report.updated, report.ambiguous) == (0, 1, 0)
    assert stored(store) == {"ACE-0013": ("Aceite", 5, Decimal("12.00"))}


def test_a_row_whose_key_names_several_items_is_skipped_naming_them(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-1", stock=1)
    make_item("ace-1", stock=2)
    make_item("B-1", "Harina", stock=3, price="5.00")

    response = upload(admin_client, store, HEADER + "Ace-1,Aceite,9,9\nB-1,Harina,4,5\n")

    report = response.context["report"]
    assert report.applied
    assert (report.created, report.updated, report.ambiguous) == (0, 1, 1)
    [skipped] = report.skipped
    assert (skipped.line, skipped.sku) == (2, "Ace-1")
    assert "«ACE-1», «ace-1»" in skipped.reason and "no se tocó ninguno" in skipped.reason
    assert [i.stock for i in Item.objects.filter(sku__in=["ACE-1", "ace-1"]).order_by("sku")] == [
        1,
        2,
    ]
    assert Item.objects.get(sku="B-1").stock == 4  # the rest of the file is applied
    page = response.content.decode()
    assert "Filas que no se importaron (1)" in page and "no se tocó ninguno" in page
    assert "con SKU ambiguo 1 (no se importaron)" in report.summary()


def test_the_exact_sku_decides_among_items_that_share_a_key(
    store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-1", stock=1)
    make_item("ace-1", stock=2)

    report = run(store, HEADER + "ace-1,Aceite,7,1\n")
    assert (report.updated, report.ambiguous) == (1, 0)
    assert (Item.objects.get(sku="ACE-1").stock, Item.objects.get(sku="ace-1").stock) == (1, 7)

    # Spaces around it, as Excel may leave them, do not make it ambiguous.
    report = run(store, HEADER + '"  ACE-1 ",Aceite,8,1\n')
    assert (report.updated, report.ambiguous) == (1, 0)
    assert (Item.objects.get(sku="ACE-1").stock, Item.objects.get(sku="ace-1").stock) == (8, 7)


def test_rows_of_one_file_sharing_a_key_never_create_near_duplicates(store: Store) -> None:
    report = run(store, HEADER + "ACE-1,Aceite,1,1\nace-1,Aceite,2,1\nB-1,Harina,1,1\n")

    assert report.applied
    assert (report.created, report.ambiguous) == (1, 2)
    assert list(stored(store)) == ["B-1"]
    assert "«ace-1» (línea 3)" in report.skipped[0].reason


def test_of_two_rows_sharing_a_key_the_one_spelled_like_the_item_updates_it(
    store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-1", stock=1)

    report = run(store, HEADER + "ace-1,Aceite,2,1\nACE-1,Aceite,3,1\n")

    assert (report.created, report.updated, report.ambiguous) == (0, 1, 1)
    assert report.skipped[0].line == 2
    assert stored(store) == {"ACE-1": ("Aceite", 3, Decimal("1.00"))}


def test_the_same_sku_twice_in_a_file_is_still_an_error(store: Store) -> None:
    report = run(store, HEADER + "A-1,Uno,1,1\nA-1,Uno,2,1\n")
    assert not report.applied
    assert "SKU repetido" in report.errors[0].reason


def test_a_repeated_sku_is_an_error_after_another_spelling_of_its_key(
    store: Store, make_item: MakeItem
) -> None:
    # "ACE-1" twice must not update the item twice, even when "ace-1" came first.
    make_item("ACE-1", "Aceite", stock=1, price="10.00")

    report = run(store, HEADER + "ace-1,Aceite,2,10\nACE-1,Aceite,3,10\nACE-1,Aceite,4,10\n")

    assert not report.applied
    assert [(e.line, e.reason) for e in report.errors] == [
        (4, "SKU repetido: «ACE-1» está en las líneas 3 y 4.")
    ]
    assert stored(store) == {"ACE-1": ("Aceite", 1, Decimal("10.00"))}


def test_a_sku_left_with_spaces_by_the_migration_is_found_by_its_exact_spelling(
    store: Store, make_item: MakeItem
) -> None:
    make_item("GAL-1", "Galletitas", stock=1, price="1.00")
    legacy(make_item("tmp", "Galletitas viejas", stock=2, price="2.00"), " GAL-1 ")
    before = snapshot(store)

    unchanged = run(store, HEADER + " GAL-1 ,Galletitas viejas,2,2\nGAL-1,Galletitas,1,1\n")
    assert (unchanged.created, unchanged.updated, unchanged.unchanged) == (0, 0, 2)
    assert snapshot(store) == before

    changed = run(store, HEADER + " GAL-1 ,Galletitas viejas,5,2\n")
    assert (changed.updated, changed.ambiguous) == (1, 0)
    assert stored(store)[" GAL-1 "][1] == 5 and stored(store)["GAL-1"][1] == 1


# ----- ambiguous SKUs: listed -----------------------------------------------------------


def test_vxm_catalog_ambiguous_lists_skus_that_share_a_key(
    store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-1", "Aceite")
    make_item("ace-1", "Aceite (duplicado)")
    legacy(make_item("tmp", "Galletitas viejas"), " GAL-1 ")
    make_item("GAL-1", "Galletitas")
    make_item("B-1", "Harina")

    assert [[i.sku for i in group] for group in ambiguous_groups(store)] == [
        ["ACE-1", "ace-1"],
        [" GAL-1 ", "GAL-1"],
    ]
    out = io.StringIO()
    call_command("catalog", "ambiguous", "sur", stdout=out)
    text = out.getvalue()
    assert "4 productos en 2 grupos" in text
    assert "«ace-1»" in text and "« GAL-1 »" in text and "(con espacios alrededor)" in text
    assert "B-1" not in text


def test_vxm_catalog_ambiguous_says_when_there_are_none(store: Store, make_item: MakeItem) -> None:
    make_item("A-1")
    out = io.StringIO()
    call_command("catalog", "ambiguous", "sur", stdout=out)
    assert out.getvalue().strip() == "«sur» no tiene SKU ambiguos."


def test_vxm_catalog_import_lists_skipped_rows(
    tmp_path: Any, store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-1")
    make_item("ace-1")
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "Ace-1,Aceite,9,9\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()

    call_command("catalog", "import", "sur", str(path), stdout=out, stderr=err)

    assert "con SKU ambiguo 1 (no se importaron)" in out.getvalue()
    assert err.getvalue().startswith("No se importó la línea 2: Ace-1: La tienda tiene 2 productos")


# ----- migration 0004: existing rows ----------------------------------------------------


def run_migration_data_steps() -> str:
    """Migration 0004's data steps on today's rows (they use only the editor's
    connection; a real schema editor cannot open inside the test's transaction)."""
    out = io.StringIO()
    editor = SimpleNamespace(connection=connection)
    with contextlib.redirect_stdout(out):
        migration.strip_skus(apps, editor)
        migration.fill_derived(apps, editor)
    return out.getvalue()


def test_the_migration_strips_skus_and_leaves_those_that_would_collide(
    store: Store, other_store: Store, make_item: MakeItem
) -> None:
    clean = make_item("tmp1", "Azúcar común")
    legacy(clean, "  AZU-1 ")
    taken = make_item("tmp2", "Galletitas viejas")
    legacy(taken, " GAL-1 ")
    make_item("GAL-1", "Galletitas")
    pair = [make_item("tmp3"), make_item("tmp4")]
    legacy(pair[0], " HAR-1")
    legacy(pair[1], "HAR-1 ")
    # Another store's "GAL-1" takes nothing from this one.
    elsewhere = make_item("tmp5", in_store=other_store)
    legacy(elsewhere, "GAL-1 ")
    Item.objects.update(search_text="")

    printed = run_migration_data_steps()

    assert sorted(stored(store)) == [" GAL-1 ", " HAR-1", "AZU-1", "GAL-1", "HAR-1 "]
    assert list(stored(other_store)) == ["GAL-1"]
    assert "espacios alrededor de 2 SKU; 3 quedaron como estaban" in printed
    assert "tienda «sur»" in printed and "« GAL-1 » (sería «GAL-1»)" in printed
    assert "vxm catalog ambiguous SLUG" in printed
    azucar = Item.objects.get(sku="AZU-1")
    assert (azucar.sku_key, azucar.search_text) == ("azu-1", search_text("AZU-1", "Azúcar común"))
    assert Item.objects.get(sku=" GAL-1 ").sku_key == "gal-1"


def test_the_migration_is_quiet_when_every_sku_is_clean(store: Store, make_item: MakeItem) -> None:
    make_item("A-1")
    assert run_migration_data_steps() == ""


def test_a_background_import_report_keeps_its_skipped_rows(
    store: Store, make_item: MakeItem
) -> None:
    from catalog.csv_import import ImportReport

    make_item("ACE-1")
    make_item("ace-1")
    report = run(store, HEADER + "Ace-1,Aceite,9,9\n")

    # A background import keeps its report as JSON; one from before has no such rows.
    assert ImportReport.from_json(report.to_json()) == report
    old = {k: v for k, v in report.to_json().items() if k not in ("skipped", "ambiguous")}
    assert ImportReport.from_json(old).skipped == []


# ----- one key for the two Unicode spellings of an accented letter ----------------------

COMPOSED = "CAFÉ-1"  # É as one character
DECOMPOSED = "CAFE\u0301-1"  # E followed by a combining acute accent (a Mac's file)


def test_a_row_spelling_an_accent_the_other_unicode_way_updates_the_item(
    store: Store, make_item: MakeItem
) -> None:
    make_item(COMPOSED, "Café molido", stock=1, price="10.00")

    report = run(store, HEADER + f"{DECOMPOSED.lower()},Café molido,5,12\n")

    assert (report.created, report.updated, report.ambiguous) == (0, 1, 0)
    assert stored(store) == {COMPOSED: ("Café molido", 5, Decimal("12.00"))}


def test_an_erp_code_spelling_an_accent_the_other_unicode_way_updates_the_item(
    store: Store, make_item: MakeItem, standin: Any
) -> None:
    from tests.erp.sync_helpers import connect, sync

    make_item(DECOMPOSED, "Café molido", stock=1, price="10.00")
    standin.load(
        [
            {
                "codigo": COMPOSED.lower(),
                "descripcion": "Café molido",
                "stock": "7.000",
                "precio_mayorista": "15.50",
                "moneda": "ARS",
                "activo": True,
                "modificado": "2026-01-05T10:00:00-03:00",
            }
        ]
    )
    connect(store, standin)

    run_ = sync(store, full=True)

    assert (run_.matched, run_.unmatched, run_.ambiguous) == (1, 0, 0)
    assert stored(store) == {DECOMPOSED: ("Café molido", 7, Decimal("15.50"))}


def test_the_key_migration_gives_both_spellings_one_key(store: Store, make_item: MakeItem) -> None:
    keys = importlib.import_module("catalog.migrations.0006_sku_key_canonical_accents")
    composed, decomposed = make_item(COMPOSED), make_item(DECOMPOSED)
    # Keys as they were before: casefold only, so the two spellings differed.
    for item in (composed, decomposed):
        Item.objects.filter(pk=item.pk).update(sku_key=item.sku.casefold())

    keys.recompute_keys(apps, SimpleNamespace(connection=connection))

    assert set(Item.objects.values_list("sku_key", flat=True)) == {"café-1"}
    assert [[i.sku for i in group] for group in ambiguous_groups(store)] == [
        sorted([COMPOSED, DECOMPOSED])
    ]
