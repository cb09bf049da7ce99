"""`vxm store ...` and `vxm user ...`."""

import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from stores.models import Membership, Store


def vxm(*args: str, stdin: str | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    extra: dict[str, Any] = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def can_log_in(email: str, password: str) -> bool:
    return Client().login(username=email, password=password)


# ----- store -------------------------------------------------------------------------


@pytest.mark.django_db
def test_store_create_with_defaults() -> None:
    out, _ = vxm("store", "create", "sur", "--name", "Distribuidora Sur")
    store = Store.objects.get(slug="sur")
    assert (store.name, store.currency, store.time_zone) == (
        "Distribuidora Sur",
        "ARS",
        "America/Argentina/Buenos_Aires",
    )
    assert "Tienda creada: sur" in out


@pytest.mark.django_db
def test_store_create_with_currency_and_time_zone() -> None:
    vxm(
        "store",
        "create",
        "uy",
        "--name",
        "Montevideo",
        "--currency",
        "USD",
        "--time-zone",
        "America/Montevideo",
    )
    store = Store.objects.get(slug="uy")
    assert (store.currency, store.time_zone) == ("USD", "America/Montevideo")


def test_store_create_refuses_an_existing_slug(store: Store) -> None:
    with pytest.raises(CommandError, match="Ya existe una tienda «sur»"):
        vxm("store", "create", "sur", "--name", "Otra")
    assert Store.objects.get(slug="sur").name == "Distribuidora Sur"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no slug!", "--name", "X"], "slug"),
        (["ok", "--name", "X", "--time-zone", "Marte/Olympus"], "no es una zona horaria"),
        (["ok", "--name", "   "], "nombre"),
        (["ok", "--name", "X", "--currency", "EUR"], "invalid choice"),
        (["ok"], "--name"),
    ],
)
def test_store_create_validates(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        vxm("store", "create", *args)
    assert not Store.objects.exists()


def test_store_list(store: Store, other_store: Store, admin_user: Any) -> None:
    out, _ = vxm("store", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["SLUG", "MONEDA", "ZONA", "HORARIA", "ADMINS", "NOMBRE"]
    assert lines[1].split()[:2] == ["norte", "ARS"] and lines[1].endswith("Mayorista Norte")
    assert lines[2].split()[3] == "1" and lines[2].endswith("Distribuidora Sur")


@pytest.mark.django_db
def test_store_needs_an_action() -> None:
    with pytest.raises(CommandError, match="required"):
        vxm("store")


# ----- user --------------------------------------------------------------------------


def test_user_create_with_password_from_stdin(store: Store) -> None:
    out, _ = vxm(
        "user",
        "create",
        "Ana@Sur.test",
        "--store",
        "sur",
        "--password-stdin",
        stdin="una clave larga\n",
    )
    user = get_user_model().objects.get(username="ana@sur.test")
    assert user.email == "ana@sur.test"
    assert Membership.objects.filter(store=store, user=user).exists()
    assert can_log_in("ana@sur.test", "una clave larga")
    assert "una clave larga" not in out


def test_user_create_generates_a_password_and_prints_it_once(store: Store) -> None:
    out, _ = vxm("user", "create", "ana@sur.test", "--store", "sur")
    lines = [line for line in out.splitlines() if "Contraseña" in line]
    assert len(lines) == 1
    password = lines[0].rsplit(": ", 1)[1]
    assert len(password) >= 12
    assert can_log_in("ana@sur.test", password)


def test_existing_user_is_added_to_another_store_keeping_the_password(
    store: Store, other_store: Store, admin_user: Any
) -> None:
    out, err = vxm(
        "user",
        "create",
        "ADMIN@sur.test",
        "--store",
        "norte",
        "--password-stdin",
        stdin="otra clave distinta\n",
    )
    memberships = Membership.objects.filter(user=admin_user)
    assert set(memberships.values_list("store__slug", flat=True)) == {"sur", "norte"}
    assert "ahora también administra «norte»" in out
    assert "su contraseña no se cambió" in err
    assert not can_log_in("admin@sur.test", "otra clave distinta")
    assert get_user_model().objects.count() == 1


def test_adding_a_member_twice_is_harmless(store: Store, admin_user: Any) -> None:
    out, _ = vxm("user", "create", "admin@sur.test", "--store", "sur")
    assert "ya administraba «sur»" in out
    assert Membership.objects.count() == 1
    assert "Contraseña" not in out


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["no-es-un-email", "--store", "sur"], None, "no es un email válido"),
        (["ana@sur.test", "--store", "nada"], None, "No existe la tienda «nada»"),
        (["ana@sur.test", "--store", "sur", "--password-stdin"], "corta\n", "Contraseña no"),
        (["ana@sur.test", "--store", "sur", "--password-stdin"], "", "No llegó ninguna"),
        (["ana@sur.test"], None, "--store"),
    ],
)
def test_user_create_errors(store: Store, args: list[str], stdin: str | None, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        vxm("user", "create", *args, stdin=stdin)
    assert not get_user_model().objects.exists()
