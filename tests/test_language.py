"""The panel in Spanish (Argentina, the default) or English: chosen by the person,
kept on their account; the browser's Accept-Language until they choose; numbers
and money written the language's way."""

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from catalog.models import Item
from catalog.templatetags.money import money, thousands
from stores.models import Store
from tests.conftest import TEST_PASSWORD
from vxm.models import UserPreference


def login(client: Client, user: Any) -> None:
    response = client.post(reverse("login"), {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 302, response.content[:500]


@pytest.mark.parametrize(
    ("language", "amount", "currency", "expected"),
    [
        ("es-ar", "1234.56", "ARS", "$ 1.234,56"),
        ("en", "1234.56", "ARS", "$1,234.56"),
        ("es-ar", "-18250.5", "USD", "-US$ 18.250,50"),
        ("en", "-18250.5", "USD", "-US$18,250.50"),
        ("es-ar", "999999999999.99", "ARS", "$ 999.999.999.999,99"),
        ("en", "0.005", "ARS", "$0.01"),
    ],
)
def test_money_is_written_the_languages_way(
    language: str, amount: str, currency: str, expected: str
) -> None:
    with translation.override(language):
        assert money(Decimal(amount), currency) == expected


def test_counts_are_grouped_the_languages_way() -> None:
    with translation.override("es-ar"):
        assert thousands(1250000) == "1.250.000"
    with translation.override("en"):
        assert thousands(1250000) == "1,250,000"


def test_the_login_page_follows_accept_language_before_any_choice(db: None) -> None:
    english = Client(headers={"accept-language": "en-US,en;q=0.9"}).get(reverse("login"))
    assert "<h1>Log in</h1>" in english.text
    assert '<html lang="en">' in english.text
    spanish = Client(headers={"accept-language": "es-AR,es;q=0.9"}).get(reverse("login"))
    assert "<h1>Ingresar</h1>" in spanish.text
    # A language the product does not have: Spanish, the default.
    other = Client(headers={"accept-language": "fr-FR"}).get(reverse("login"))
    assert "<h1>Ingresar</h1>" in other.text


def test_a_logged_in_person_who_never_chose_gets_the_browsers_language(
    admin_user: Any, store: Store
) -> None:
    client = Client(headers={"accept-language": "en"})
    login(client, admin_user)
    page = client.get(reverse("catalog:list", args=[store.slug]))
    assert "<h1>Catalog</h1>" in page.text


def test_the_choice_is_kept_on_the_account_and_follows_to_another_browser(
    admin_user: Any, store: Store
) -> None:
    catalog = reverse("catalog:list", args=[store.slug])
    first = Client(headers={"accept-language": "es-AR"})
    login(first, admin_user)
    response = first.post(reverse("set_language"), {"language": "en", "next": catalog})
    assert response.status_code == 302
    assert response["Location"] == catalog
    assert UserPreference.objects.get(user=admin_user).language == "en"
    assert "<h1>Catalog</h1>" in first.get(catalog).text

    # Another browser that asks for Spanish: logging in, the account's English wins.
    second = Client(headers={"accept-language": "es-AR"})
    login(second, admin_user)
    page = second.get(catalog)
    assert "<h1>Catalog</h1>" in page.text
    # ... and logged out, that browser's login page stays in English (the cookie).
    second.post(reverse("logout"))
    assert "<h1>Log in</h1>" in second.get(reverse("login")).text

    # Back to Spanish from the first browser reaches the second on its next page.
    first.post(reverse("set_language"), {"language": "es-ar", "next": catalog})
    login(second, admin_user)
    assert "<h1>Catálogo</h1>" in second.get(catalog).text


def test_an_anonymous_choice_on_the_login_page_is_kept_in_a_cookie(db: None) -> None:
    client = Client(headers={"accept-language": "es-AR"})
    client.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert "<h1>Log in</h1>" in client.get(reverse("login")).text


def test_the_switch_refuses_unknown_languages_and_foreign_addresses(
    admin_user: Any, admin_client: Client
) -> None:
    response = admin_client.post(
        reverse("set_language"), {"language": "fr", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    assert not UserPreference.objects.filter(user=admin_user).exists()


def test_the_item_form_reads_prices_as_either_language_writes_them(
    admin_user: Any, store: Store
) -> None:
    item = Item.objects.create(store=store, sku="ACE-1", name="Oil", stock=1, wholesale_price=1)
    url = reverse("catalog:item", args=[store.slug, item.pk])
    for language, typed in [("en", "1,234.56"), ("es-ar", "1.234,56")]:
        client = Client(headers={"accept-language": language})
        login(client, admin_user)
        response = client.post(url, {"stock": "5", "wholesale_price": typed})
        assert response.status_code == 302, response.text[:2000]
        item.refresh_from_db()
        assert item.wholesale_price == Decimal("1234.56")


def test_a_stored_message_is_shown_in_the_readers_language(store: Store, standin: Any) -> None:
    from erp import actions, stored_text
    from tests.erp.sync_helpers import connect

    connection = connect(store, standin)
    with translation.override("es-ar"):
        outcome = actions.verify_connection(store)
    assert outcome.ok
    connection.refresh_from_db()
    assert connection.last_check_message.startswith("La conexión funciona: ")
    with translation.override("en"):
        assert stored_text.check_message(connection).startswith("The connection works: ")
    with translation.override("es-ar"):
        assert stored_text.check_message(connection) == connection.last_check_message
    # A row written before the mechanism (no JSON) shows its stored text.
    connection.last_check_message_i18n = None
    with translation.override("en"):
        assert stored_text.check_message(connection) == connection.last_check_message


def test_stored_actor_labels_are_read_back_in_the_readers_language() -> None:
    from erp.stored_text import actor_label

    with translation.override("en"):
        assert actor_label("Línea de comandos") == "Command line"
        assert actor_label("NonSistemas (actualización #12)") == "NonSistemas (update #12)"
        assert actor_label("admin@sur.test") == "admin@sur.test"
