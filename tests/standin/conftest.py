"""Fixtures for the stand-in's own tests.

These tests treat the stand-in as what it stands for, a system outside the product:
they use only `nonsistemas_standin`, httpx and pytest.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nonsistemas_standin import Standin

USER = "api-ventas"
PASSWORD = "s3cret"


@pytest.fixture(autouse=True)
def _product_settings() -> None:
    """Shadows the product's autouse fixture of this name in tests/conftest.py.

    That one adjusts the product's Django settings, which the stand-in neither has
    nor needs; shadowing it keeps this suite independent of them.
    """


@pytest.fixture
def standin() -> Iterator[Standin]:
    """A stand-in with an empty catalog, one API user and default settings."""
    with Standin.start(port=0, user=USER, password=PASSWORD) as server:
        yield server


@pytest.fixture
def http(standin: Standin) -> Iterator[httpx.Client]:
    # trust_env=False: a proxy configured in the environment must not see 127.0.0.1.
    with httpx.Client(base_url=standin.url, trust_env=False, timeout=10) as client:
        yield client


class Api:
    """A minimal client of the contract, to keep the tests about the answers."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self._token: str | None = None

    def login(self, usuario: str = USER, clave: str = PASSWORD) -> httpx.Response:
        return self.http.post("/api/login", json={"usuario": usuario, "clave": clave})

    @property
    def token(self) -> str:
        if self._token is None:
            response = self.login()
            assert response.status_code == 200, response.text
            self._token = response.json()["token"]
        return self._token

    def relogin(self) -> None:
        self._token = None

    def stock(self, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.http.get("/api/stock", params=params, headers=headers)

    def page(self, **params: Any) -> dict[str, Any]:
        response = self.stock(**params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def codes(self, **params: Any) -> list[str]:
        return [item["codigo"] for item in self.page(**params)["items"]]


@pytest.fixture
def api(http: httpx.Client) -> Api:
    return Api(http)
