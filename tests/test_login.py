"""Logging in: guessing and spraying are stopped, and nobody sharing an address
(an office NAT, a mobile carrier) can lock the others out (vxm/auth.py).

Every request goes through the real login page with Django's test client; an
address is the client's REMOTE_ADDR, a browser is a client with its cookies.
Time passing is moved in the database, not waited for.
"""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection as db_connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from stores.models import Membership, Store
from tests.conftest import TEST_PASSWORD
from vxm.auth import KNOWN_BROWSER_COOKIE
from vxm.models import LoginAttempt

OFFICE = "200.45.12.7"  # an office NAT: every admin of the store shares it
HOME = "181.16.3.40"
ADMIN = "admin@sur.test"


def browser(address: str = OFFICE) -> Client:
    return Client(REMOTE_ADDR=address)


def login(client: Client, username: str, password: str, **extra: Any) -> Any:
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def logged_in(response: Any) -> bool:
    return response.status_code == 302 and response.url == reverse("home")


def page(response: Any) -> str:
    return str(response.content.decode())


def known_browser(address: str = OFFICE, username: str = ADMIN) -> Client:
    """A browser `username` logged in from before (and then logged out)."""
    client = browser(address)
    assert logged_in(login(client, username, TEST_PASSWORD))
    client.post(reverse("logout"))
    return client


def window_passes() -> None:
    LoginAttempt.objects.update(at=timezone.now() - timedelta(minutes=16))


@pytest.fixture
def colleague(store: Store) -> Any:
    user = get_user_model().objects.create_user(
        username="ventas@sur.test", email="ventas@sur.test", password=TEST_PASSWORD
    )
    Membership.objects.create(store=store, user=user)
    return user


# ---- guessing one account ---------------------------------------------------------------


def test_guessing_one_account_from_one_address_is_stopped(admin_user, colleague):
    guesser = browser()
    for _ in range(5):
        assert login(guesser, ADMIN, "incorrecta").status_code == 200
    # Even the right password, now: the guesser must not learn it is right.
    response = login(guesser, ADMIN, TEST_PASSWORD)
    assert response.status_code == 429
    assert "Demasiados intentos fallidos de ingresar con este usuario desde esta conexión" in (
        page(response)
    )
    oldest = LoginAttempt.objects.order_by("at").first()
    assert oldest is not None
    retry_at = timezone.localtime(oldest.at + timedelta(minutes=15))
    assert f"probá de nuevo a las {retry_at:%H:%M}" in page(response)
    assert 1 <= int(response["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in guesser.session
    # The same username in other letter case and spacing shares the budget.
    assert login(browser(), " ADMIN@Sur.test", TEST_PASSWORD).status_code == 429

    # Only that username from that address: a colleague behind the same NAT, and
    # the admin from home, log in.
    assert logged_in(login(browser(), "ventas@sur.test", TEST_PASSWORD))
    assert logged_in(login(browser(HOME), ADMIN, TEST_PASSWORD))

    # Fifteen minutes later it logs in from the office too.
    window_passes()
    assert logged_in(login(browser(), ADMIN, TEST_PASSWORD))


def test_a_correct_password_gets_in_from_an_address_where_others_failed(admin_user, colleague):
    # A busy morning behind the office NAT: people who forgot their password
    # (20 failures, which used to lock the whole address out for 15 minutes).
    for n in range(4):
        for _ in range(5):
            login(browser(), f"empleado{n}@sur.test", "me olvidé")
    # Someone who never logged in from this browser types the right password.
    assert logged_in(login(browser(), ADMIN, TEST_PASSWORD))
    assert logged_in(login(browser(), "ventas@sur.test", TEST_PASSWORD))


def test_guessing_one_account_from_many_addresses_does_not_lock_its_owner_out(admin_user):
    at_the_office = known_browser()
    # A botnet: 10 addresses, one guess each.
    for n in range(10):
        login(browser(f"45.160.2.{n}"), ADMIN, "incorrecta")
    # An unknown browser, even with the right password and from a fresh address, waits.
    response = login(browser("45.160.9.9"), ADMIN, TEST_PASSWORD)
    assert response.status_code == 429
    assert "ingresar con este usuario. Por seguridad" in page(response)
    assert "ya ingresaste antes podés entrar ahora" in page(response)
    # The admin's own browser gets in.
    assert logged_in(login(at_the_office, ADMIN, TEST_PASSWORD))


def test_a_known_browser_cookie_allows_no_more_guesses_than_an_address(admin_user):
    stolen = known_browser()
    for n in range(5):
        # From different addresses: only the cookie ties them together.
        assert login(stolen, ADMIN, "incorrecta", REMOTE_ADDR=f"45.160.3.{n}").status_code == 200
    assert login(stolen, ADMIN, TEST_PASSWORD, REMOTE_ADDR="45.160.3.9").status_code == 429


def test_a_forged_or_another_users_cookie_is_not_a_known_browser(admin_user, colleague):
    colleagues_browser = known_browser(username="ventas@sur.test")
    tampered = known_browser()
    for n in range(10):
        login(browser(f"45.160.4.{n}"), ADMIN, "incorrecta")
    # The colleague's known browser is not the admin's.
    assert login(colleagues_browser, ADMIN, TEST_PASSWORD).status_code == 429
    forged = browser()
    forged.cookies[KNOWN_BROWSER_COOKIE] = '[["admin@sur.test", "abc"]]'
    assert login(forged, ADMIN, TEST_PASSWORD).status_code == 429
    value = tampered.cookies[KNOWN_BROWSER_COOKIE].value
    tampered.cookies[KNOWN_BROWSER_COOKIE] = value.replace(
        value[5], "x" if value[5] != "x" else "y"
    )
    assert login(tampered, ADMIN, TEST_PASSWORD).status_code == 429


# ---- spraying many usernames from one address ---------------------------------------------


def test_spraying_usernames_from_one_address_is_stopped_but_known_browsers_get_in(
    admin_user, colleague
):
    at_the_office = known_browser()
    sprayer = browser()
    for n in range(10):
        assert login(sprayer, f"admin{n}@tienda.test", "Verano2026").status_code == 200
    response = login(sprayer, "compras@tienda.test", "Verano2026")
    assert response.status_code == 429
    assert "con distintos usuarios desde esta conexión" in page(response)
    # The trade-off, as docs/security.md says: a browser that never logged in
    # waits, even with the right password...
    assert login(browser(), "ventas@sur.test", TEST_PASSWORD).status_code == 429
    # ...the admin's usual browser behind the same address gets in...
    assert logged_in(login(at_the_office, ADMIN, TEST_PASSWORD))
    # ...and other addresses are not affected.
    assert logged_in(login(browser(HOME), "ventas@sur.test", TEST_PASSWORD))


def test_a_forged_forwarded_for_does_not_escape_the_address_limit(admin_user, settings):
    client = browser()
    for n in range(10):
        login(client, f"nadie{n}@x.test", "x", headers={"X-Forwarded-For": f"198.51.100.{n}"})
    assert login(client, ADMIN, TEST_PASSWORD).status_code == 429
    # Behind a proxy, the address it appended (the last one) is the client's.
    settings.VXM_BEHIND_PROXY = True
    LoginAttempt.objects.all().delete()
    proxied = browser()
    for n in range(10):
        login(
            proxied,
            f"nadie{n}@x.test",
            "x",
            headers={"X-Forwarded-For": f"1.2.3.{n}, 198.51.100.7"},
        )
    refused = login(proxied, ADMIN, TEST_PASSWORD, headers={"X-Forwarded-For": "198.51.100.7"})
    assert refused.status_code == 429
    elsewhere = login(proxied, ADMIN, TEST_PASSWORD, headers={"X-Forwarded-For": "198.51.100.8"})
    assert logged_in(elsewhere)


# ---- what a success forgets, and simultaneous guesses ------------------------------------


def test_a_success_forgets_that_persons_typos(admin_user):
    client = browser()
    for _ in range(4):
        login(client, ADMIN, "incorrecta")
    assert logged_in(login(client, ADMIN, TEST_PASSWORD))
    assert not LoginAttempt.objects.filter(username=ADMIN).exists()
    client.post(reverse("logout"))
    for _ in range(5):
        assert login(client, ADMIN, "incorrecta").status_code == 200
    assert login(client, ADMIN, TEST_PASSWORD).status_code == 429


@pytest.mark.django_db(transaction=True)
def test_simultaneous_guesses_check_at_most_the_limit_of_passwords(admin_user, monkeypatch):
    from django.contrib.auth import authenticate as real_authenticate

    guesses = 12
    checked: list[str] = []
    decided = 0
    condition = threading.Condition()

    def one_more_decided() -> None:
        nonlocal decided
        with condition:
            decided += 1
            condition.notify_all()

    def held_authenticate(*args: Any, **kwargs: Any) -> Any:
        # Each password check waits until every guess was let through or refused:
        # a limit that counted only checked passwords would let all 12 through.
        checked.append(str(kwargs.get("password")))
        one_more_decided()
        with condition:
            assert condition.wait_for(lambda: decided >= guesses, timeout=60), "deadlock"
        return real_authenticate(*args, **kwargs)

    # The login form's own reference: every password checked goes through it.
    monkeypatch.setattr("django.contrib.auth.forms.authenticate", held_authenticate)
    barrier = threading.Barrier(guesses)
    statuses: list[int] = []

    def guess(n: int) -> None:
        try:
            barrier.wait()
            status = login(browser(), ADMIN, f"intento-{n}").status_code
            statuses.append(status)
            if status == 429:
                one_more_decided()
        finally:
            db_connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= len(checked) <= 5
    assert sorted(statuses) == [200] * len(checked) + [429] * (guesses - len(checked))


def test_typos_in_a_known_browser_do_not_lock_the_owners_other_browsers(admin_user):
    laptop = known_browser()
    for _ in range(5):
        assert login(laptop, ADMIN, "incorrecta").status_code == 200
    assert login(laptop, ADMIN, TEST_PASSWORD).status_code == 429
    # The phone, on the office wifi, never logged in before: its own budget.
    assert logged_in(login(browser(), ADMIN, TEST_PASSWORD))
