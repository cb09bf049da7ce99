"""`vxm catalog import|export`, through call_command and once as a real process."""

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import ChangeSource, Item, ItemChange, sku_key
from stores.models import Store
from tests.catalog.conftest import MakeItem, snapshot

HEADER = "sku,name,stock,wholesale_price\n"
VXM = Path(sys.executable).with_name("vxm")


def vxm(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path: Path, content: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "catalogo.csv"
    path.write_text(content, encoding=encoding)
    return str(path)


def test_import_prints_the_report(tmp_path: Path, store: Store, make_item: MakeItem) -> None:
    make_item("A", "Uno", stock=1, price="1.00")
    path = write(tmp_path, HEADER + "A,Uno,2,1\nB,Dos,3,4.50\nC,Tres,0,0\n")

    out, _ = vxm("catalog", "import", "sur", path)

    assert "3 filas. Importación lista: creados 2, actualizados 1, sin cambios 0." in out
    assert Item.objects.get(sku="B").wholesale_price == Decimal("4.50")
    change = ItemChange.objects.get(item__sku="A")
    assert change.source == ChangeSource.CSV and change.actor.startswith("línea de comandos")


def test_import_with_bad_rows_fails_lists_them_on_stderr_and_writes_nothing(
    tmp_path: Path, store: Store, make_item: MakeItem
) -> None:
    make_item("A", "Uno", stock=1, price="1.00")
    before = snapshot(store)
    path = write(tmp_path, HEADER + "A,Uno,5,1\nB,Dos,-3,1\nC,Tres,1,abc\n")
    err = io.StringIO()

    with pytest.raises(CommandError, match="No se importó nada: corregí estas filas") as e:
        call_command("catalog", "import", "sur", path, stdout=io.StringIO(), stderr=err)

    assert "2 de 3 filas con errores" in str(e.value)
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("línea 3: B: El stock no puede ser negativo")
    assert lines[1].startswith("línea 4: C: El precio tiene letras")
    assert snapshot(store) == before


def test_import_refuses_a_file_that_is_not_a_catalog(tmp_path: Path, store: Store) -> None:
    path = write(tmp_path, "codigo;precio\nA;1\n")
    with pytest.raises(CommandError, match="La primera fila tiene que ser"):
        vxm("catalog", "import", "sur", path)
    assert not Item.objects.exists()


def test_import_unknown_store_or_missing_file(tmp_path: Path, store: Store) -> None:
    with pytest.raises(CommandError, match="No existe la tienda «nada»"):
        vxm("catalog", "import", "nada", write(tmp_path, HEADER))
    with pytest.raises(CommandError, match="No se pudo abrir"):
        vxm("catalog", "import", "sur", str(tmp_path / "no-existe.csv"))


# Real-store rows for the CLI export, whose CSV and JSON scripts read: these must
# stay byte for byte as the fixtures (comma, point decimals, English columns).
CLI_EXPORT_ITEMS = [
    ("A-1", "Aceite", 120, "99.5"),
    ("B-2", 'Tornillo 1/2", caja', 0, "18250"),
    ("C-Ñ 10+%#", "Ñoquis de acá; 1,5 kg", 3, "1234.56"),
    ("D-9", "Absurdo", 2_000_000_000, "99999999.99"),
]
EXPORTED_AT = datetime(2026, 3, 2, 15, 30, 5, 123456, tzinfo=UTC)
FIXTURES = Path(__file__).with_name("fixtures")


def seed_cli_export(store: Store) -> None:
    Item.objects.bulk_create(
        Item(
            store=store,
            sku=sku,
            sku_key=sku_key(sku),
            name=name,
            stock=stock,
            wholesale_price=Decimal(price),
        )
        for sku, name, stock, price in CLI_EXPORT_ITEMS
    )
    Item.objects.filter(store=store).update(updated_at=EXPORTED_AT)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_csv_and_json_stay_as_scripts_read_them(store: Store, fmt: str) -> None:
    seed_cli_export(store)
    expected = (FIXTURES / f"cli_export.{fmt}").read_bytes()

    args = ("catalog", "export", "sur") + (("--format", fmt) if fmt == "json" else ())
    out, _ = vxm(*args)

    assert out.encode("utf-8") == expected


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_to_a_file_writes_the_same_bytes(tmp_path: Path, store: Store, fmt: str) -> None:
    seed_cli_export(store)
    target = tmp_path / f"catalogo.{fmt}"

    _, err = vxm("catalog", "export", "sur", "--format", fmt, "--output", str(target))

    assert target.read_bytes() == (FIXTURES / f"cli_export.{fmt}").read_bytes()
    assert f"guardado en {target}" in err


def test_export_xlsx_to_a_file(tmp_path: Path, store: Store) -> None:
    seed_cli_export(store)
    target = tmp_path / "catalogo.xlsx"

    vxm("catalog", "export", "sur", "--format", "xlsx", "--output", str(target))

    sheet = openpyxl.load_workbook(target).active
    assert sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("SKU", "Nombre", "Stock", "Precio mayorista", "Actualizado")
    local = datetime(2026, 3, 2, 12, 30, 5, 123000)  # the store's -03:00, naive
    by_sku = {row[0]: row for row in rows[1:]}
    assert by_sku["C-Ñ 10+%#"][1:4] == ("Ñoquis de acá; 1,5 kg", 3, 1234.56)
    assert by_sku["D-9"][2:4] == (2_000_000_000, 99999999.99)
    moment = by_sku["A-1"][4]
    assert isinstance(moment, datetime) and abs((moment - local).total_seconds()) < 0.01
    assert not list(tmp_path.glob("*.parcial"))  # no leftover partial file


def test_export_xlsx_without_output_refuses_to_print_binary(store: Store) -> None:
    with pytest.raises(CommandError, match="indicá dónde guardarlo con --output") as e:
        vxm("catalog", "export", "sur", "--format", "xlsx")
    assert "--output catalogo-sur.xlsx" in str(e.value)


def test_export_to_an_unwritable_place_says_so(tmp_path: Path, store: Store) -> None:
    target = tmp_path / "no-existe" / "catalogo.xlsx"
    with pytest.raises(CommandError, match="No se pudo escribir"):
        vxm("catalog", "export", "sur", "--format", "xlsx", "--output", str(target))


def test_export_rejects_an_unknown_format(store: Store) -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        vxm("catalog", "export", "sur", "--format", "xml")


def test_real_cli_end_to_end(tmp_path: Path) -> None:
    """The installed `vxm` script against its own SQLite file named by DATABASE_URL."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VXM), *args], input=stdin, env=env, capture_output=True, text=True, timeout=60
        )

    assert run("migrate", "--verbosity", "0").returncode == 0
    created = run("store", "create", "e2e", "--name", "Tienda E2E")
    assert created.returncode == 0, created.stderr
    user = run(
        "user",
        "create",
        "ana@e2e.test",
        "--store",
        "e2e",
        "--password-stdin",
        stdin="clave secreta larga\n",
    )
    assert user.returncode == 0, user.stderr

    good = tmp_path / "bueno.csv"
    good.write_bytes("sku;name;stock;wholesale_price\nÑ-1;Ñoquis;4;1.250,50\n".encode("cp1252"))
    imported = run("catalog", "import", "e2e", str(good))
    assert imported.returncode == 0, imported.stderr
    assert "creados 1," in imported.stdout

    bad = tmp_path / "malo.csv"
    bad.write_text(HEADER + "X,Equis,-1,1\n", encoding="utf-8")
    failed = run("catalog", "import", "e2e", str(bad))
    assert failed.returncode == 1
    assert "línea 2: X: El stock no puede ser negativo" in failed.stderr
    assert "No se importó nada" in failed.stderr and failed.stdout == ""

    exported = run("catalog", "export", "e2e", "--format", "json")
    assert exported.returncode == 0
    assert [(i["sku"], i["name"], i["wholesale_price"]) for i in json.loads(exported.stdout)] == [
        ("Ñ-1", "Ñoquis", "1250.50")
    ]

    missing = run("catalog", "export", "nada")
    assert missing.returncode == 1 and "No existe la tienda «nada»" in missing.stderr
    assert run("store").returncode == 2  # usage error: an action is required
