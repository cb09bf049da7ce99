"""Arbitrary input to the other forms of the panel: never a 500.

The item form and the CSV import have their own fuzz tests (tests/catalog/
test_fuzz.py); these cover the ERP settings form and the catalog's search and
paging parameters. The test client re-raises whatever a view lets escape.
"""

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from erp.models import Connection
from stores.models import Store

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
URLS = st.one_of(
    st.sampled_from(
        [
            "https://erp.example.com",
            "https://[::1",
            "https://erp.example.com:99999",
            "https://usuario:clave@erp.example.com",
            "ftp://erp.example.com",
            "https://" + "a" * 300 + ".com",
            "https://erp.example.com/\x00",
            "https://\uff45\uff52\uff50.example.com",  # fullwidth letters
            "https://xn--.com",
            "http://127.0.0.1:1",
        ]
    ),
    st.text(max_size=80),
    st.from_regex(r"https?://[^/]{0,30}(/[^ ]{0,20})?", fullmatch=True),
)


def _connection_state(store: Store) -> list[tuple[Any, ...]]:
    return list(
        Connection.objects.filter(store=store).values_list(
            "url", "username", "password_encrypted", "ca_cert_pem"
        )
    )


@FUZZ
@example(url="https://erp.example.com", username="\x00", password="x", ca_cert=b"")
@example(url="https://erp.example.com", username="api", password="x", ca_cert=b"\xff" * 50)
@given(
    url=URLS,
    username=st.text(max_size=40),
    password=st.text(max_size=40),
    ca_cert=st.binary(max_size=200),
)
def test_erp_settings_form_never_500s(
    admin_client: Client, store: Store, url: str, username: str, password: str, ca_cert: bytes
) -> None:
    data: dict[str, Any] = {"url": url, "username": username, "password": password}
    if ca_cert:
        data["ca_cert"] = SimpleUploadedFile("ca.pem", ca_cert)
    before = _connection_state(store)

    response = admin_client.post(reverse("erp:settings", args=[store.slug, "nonsistemas"]), data)

    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert response.context["form"].errors
        assert _connection_state(store) == before


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["q", "stock", "after", "before", "page"]),
        st.one_of(st.text(max_size=30), st.sampled_from(["9" * 30, "\x00", "-1", " GAL+1 "])),
    )
)
def test_catalog_search_and_paging_never_500(
    admin_client: Client, store: Store, params: dict[str, str]
) -> None:
    response = admin_client.get(reverse("catalog:list", args=[store.slug]), params)
    assert response.status_code == 200
