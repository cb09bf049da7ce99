"""Bad arguments and bad files to `vxm catalog|store|user|erp`: a clear message and a
non-zero exit, never a traceback, and nothing written."""

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Item
from erp.models import Connection
from stores.models import Store
from tests.catalog.conftest import snapshot

VXM = Path(sys.executable).with_name("vxm")
HEADER = "sku,name,stock,wholesale_price\n"
# What Python makes of undecodable bytes on stdin (surrogateescape, C/UTF-8 locales).
UNDECODABLE = "\udcff\udcfe\udcfa" * 4


@pytest.fixture
def an_item(store: Store) -> Item:
    return Item.objects.create(store=store, sku="A", name="Uno", stock=5, wholesale_price=10)


def vxm(*args: str, stdin: str | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    extra: dict[str, Any] = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


# ----- vxm catalog -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda tmp: str(tmp / "no-existe.csv"), "No se pudo abrir «.*no-existe.csv»"),
        (lambda tmp: str(tmp), "No se pudo abrir .*Is a directory"),
        (
            lambda tmp: _write(tmp / "foto.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
            "no es un CSV de texto",
        ),
        (lambda tmp: _write(tmp / "vacio.csv", b""), "El archivo está vacío"),
        (lambda tmp: _write(tmp / "precio.csv", HEADER + "A,B,1," + "9" * 40), "1 de 1 filas"),
    ],
    ids=["missing", "directory", "binary", "empty", "29-digit-price"],
)
def test_catalog_import_of_a_bad_file_says_why(
    tmp_path: Path, store: Store, an_item: Item, make_path: Any, message: str
) -> None:
    before = snapshot(store)
    with pytest.raises(CommandError, match=message):
        vxm("catalog", "import", "sur", make_path(tmp_path))
    assert snapshot(store) == before


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc")
def test_catalog_import_of_a_file_that_fails_to_read(store: Store, an_item: Item) -> None:
    before = snapshot(store)
    # Opens fine, then every read fails with EIO: a failing disk or network share.
    with pytest.raises(CommandError, match=r"No se pudo leer «/proc/self/mem».*No se importó nada"):
        vxm("catalog", "import", "sur", "/proc/self/mem")
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("catalog", "import", "nada", "x.csv"), "No existe la tienda «nada»"),
        (("catalog", "export", "sur", "--format", "xml"), "invalid choice: 'xml'"),
        (("catalog", "export", "sur", "--format", "xlsx"), "indicá dónde guardarlo con --output"),
        (("store", "create", "mal slug!", "--name", "X"), "No se creó la tienda: slug"),
        (("store", "create", "eu", "--name", "X", "--currency", "EUR"), "invalid choice: 'EUR'"),
        (("store", "create", "tz", "--name", "X", "--time-zone", "Marte/Olimpo"), "zona horaria"),
        (("user", "create", "no-es-email", "--store", "sur"), "no es un email válido"),
        (("user", "create", "ana@sur.test", "--store", "nada"), "No existe la tienda «nada»"),
        (("erp", "verify", "nada"), "No existe la tienda «nada»"),
        (("erp", "runs", "sur", "--limit", "0"), "--limit tiene que ser entre 1 y 1000"),
        (("erp", "runs", "sur", "--limit", "9223372036854775808"), "entre 1 y 1000"),
        (("erp", "runs", "sur", "--limit", "muchas"), "invalid int value"),
        (("erp", "configure", "sur", "sap", "--url", "https://x.test"), "invalid choice"),
    ],
)
def test_bad_arguments_are_a_message(store: Store, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        vxm(*args)
    assert list(Store.objects.values_list("slug", flat=True)) == ["sur"]


def test_user_create_refuses_an_email_longer_than_a_username(store: Store) -> None:
    # A valid address (251 characters) that PostgreSQL's username column
    # (150) would refuse with a DataError.
    email = "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".com"
    with pytest.raises(CommandError, match="El email tiene 251 caracteres y el máximo es 150"):
        vxm("user", "create", email, "--store", "sur")
    assert not get_user_model().objects.exists()


def test_passwords_on_stdin_that_are_not_text_are_refused(store: Store) -> None:
    with pytest.raises(CommandError, match="no es texto UTF-8"):
        vxm(
            "user",
            "create",
            "ana@sur.test",
            "--store",
            "sur",
            "--password-stdin",
            stdin=UNDECODABLE,
        )
    with pytest.raises(CommandError, match="no es texto UTF-8"):
        vxm(
            "erp",
            "configure",
            "sur",
            "nonsistemas",
            "--url",
            "https://erp.example.com",
            "--username",
            "api",
            "--password-stdin",
            stdin=UNDECODABLE,
        )
    assert not get_user_model().objects.exists() and not Connection.objects.exists()


def test_erp_configure_without_encryption_keys_is_a_message(store: Store, settings: Any) -> None:
    settings.VXM_ENCRYPTION_KEYS = []
    with pytest.raises(CommandError, match=r"No se guardó la configuración\. VXM_ENCRYPTION_KEYS"):
        vxm(
            "erp",
            "configure",
            "sur",
            "nonsistemas",
            "--url",
            "https://erp.example.com",
            "--username",
            "api",
            "--password-stdin",
            stdin="secreta\n",
        )
    assert not Connection.objects.exists()


# ----- as a real process: pipes ------------------------------------------------------


def test_pipes_in_and_out_of_the_real_cli(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(VXM), *args], input=stdin, env=env, capture_output=True, timeout=60
        )

    assert run("migrate", "--verbosity", "0").returncode == 0
    assert run("store", "create", "sur", "--name", "Sur").returncode == 0

    # A pipe cannot be read twice: the command copies it first.
    rows = "".join(f"S-{i:04d},Producto {i},{i},{i},50\n" for i in range(3000))
    piped = run("catalog", "import", "sur", "/dev/stdin", stdin=(HEADER + rows).encode())
    assert piped.returncode == 1  # the unquoted decimal comma: a clear row error
    assert b"Traceback" not in piped.stderr and b"coma decimal sin comillas" in piped.stderr
    rows = "".join(f"S-{i:04d},Producto {i},{i},{i}.50\n" for i in range(3000))
    piped = run("catalog", "import", "sur", "/dev/stdin", stdin=(HEADER + rows).encode())
    assert piped.returncode == 0, piped.stderr
    assert b"creados 3000" in piped.stdout

    # The reader of the export goes away after one line (`vxm catalog export | head -1`).
    export = subprocess.Popen(
        [str(VXM), "catalog", "export", "sur"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert export.stdout is not None and export.stderr is not None
    export.stdout.readline()
    export.stdout.close()
    stderr = export.stderr.read()
    assert export.wait(timeout=60) == 1
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr

    # Bytes that are not UTF-8 as a password; a LIMIT the database cannot hold.
    bad_password = run(
        "user",
        "create",
        "ana@sur.test",
        "--store",
        "sur",
        "--password-stdin",
        stdin=b"\xff\xfe" * 8,
    )
    huge_limit = run("erp", "runs", "sur", "--limit", "99999999999999999999")
    for failed in (bad_password, huge_limit):
        assert failed.returncode == 1
        assert b"Traceback" not in failed.stderr and failed.stderr.startswith(b"CommandError: ")


def _write(path: Path, content: bytes | str) -> str:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)
