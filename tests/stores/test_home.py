"""The home page: straight to the catalog with one store, a chooser with several."""

from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from stores.models import Membership, Store


def test_one_store_goes_straight_to_its_catalog(admin_client: Client, store: Store) -> None:
    response = admin_client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:list", args=[store.slug])


def test_several_stores_are_offered(
    admin_client: Client, admin_user: Any, store: Store, other_store: Store
) -> None:
    Membership.objects.create(store=other_store, user=admin_user)
    html = admin_client.get(reverse("home")).content.decode()
    assert reverse("catalog:list", args=[store.slug]) in html
    assert reverse("catalog:list", args=[other_store.slug]) in html


def test_no_store_explains_what_to_do(client: Client, db: None) -> None:
    user = get_user_model().objects.create_user("nadie@x.test", "nadie@x.test", "x" * 12)
    client.force_login(user)
    assert "no administra ninguna tienda" in client.get(reverse("home")).content.decode()
