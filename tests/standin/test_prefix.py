"""A base URL with a path prefix, with and without a trailing slash."""

from collections.abc import Iterator

import httpx
import pytest

from nonsistemas_standin import Standin, StandinClient

from .conftest import PASSWORD, USER


@pytest.fixture(params=["/ns", "/ns/", "ns"])
def prefixed(request: pytest.FixtureRequest) -> Iterator[Standin]:
    with Standin.start(user=USER, password=PASSWORD, items=5, prefix=request.param) as standin:
        yield standin


@pytest.fixture
def raw() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client


def test_url_carries_the_prefix_without_trailing_slash(prefixed: Standin) -> None:
    assert prefixed.url == f"http://127.0.0.1:{prefixed.port}/ns"


@pytest.mark.parametrize("trailing", ["", "/"])
def test_endpoints_are_relative_to_the_prefix(
    prefixed: Standin, raw: httpx.Client, trailing: str
) -> None:
    base = prefixed.url + trailing
    join = base + ("api/" if trailing else "/api/")
    assert raw.get(join + "version").json()["producto"] == "NonSistemas"
    login = raw.post(join + "login", json={"usuario": USER, "clave": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    assert raw.get(join + "stock", headers=headers).json()["total_items"] == 5


def test_httpx_base_url_with_trailing_slash(prefixed: Standin) -> None:
    with httpx.Client(base_url=prefixed.url + "/", trust_env=False) as http:
        assert http.get("api/version").status_code == 200
        assert http.get("/api/version").status_code == 200


@pytest.mark.parametrize("path", ["/api/version", "/ns//api/version", "/ns", "/nsapi/version"])
def test_outside_the_prefix_is_404(prefixed: Standin, raw: httpx.Client, path: str) -> None:
    response = raw.get(f"http://127.0.0.1:{prefixed.port}{path}")
    assert response.status_code == 404
    assert response.json()["error"]["codigo"] == "no_encontrado"


def test_control_lives_under_the_prefix(prefixed: Standin) -> None:
    client = StandinClient(prefixed.url + "/")
    assert len(client.items()) == 5
    assert prefixed.requests() == []  # control calls are not API requests
