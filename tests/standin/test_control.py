"""The control interface over HTTP: StandinClient drives a stand-in like Standin does."""

import inspect
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from nonsistemas_standin import Fault, Standin, StandinClient

from .conftest import Api

OPERATIONS = [
    "generate",
    "load",
    "items",
    "edit",
    "set_clock_offset",
    "advance",
    "now",
    "configure",
    "add_user",
    "inject",
    "clear_faults",
    "requests",
    "clear_requests",
    "reset",
]


@pytest.fixture
def client(standin: Standin) -> StandinClient:
    return StandinClient(standin.url)


@pytest.mark.parametrize("name", OPERATIONS)
def test_same_signatures_as_standin(name: str) -> None:
    assert inspect.signature(getattr(StandinClient, name)) == inspect.signature(
        getattr(Standin, name)
    )


def test_catalog_operations(standin: Standin, client: StandinClient, api: Api) -> None:
    client.generate(25, seed=3)
    assert client.items() == standin.items()
    assert len(client.items()) == 25

    modificado = datetime.fromisoformat("2026-11-20T14:03:11-03:00")
    client.load(
        [
            {
                "codigo": "A",
                "stock": Decimal("1.5"),
                "precio_mayorista": None,
                "modificado": modificado,
            },
            {
                "codigo": "B",
                "stock": 2,
                "precio_mayorista": "3",
                "modificado": "2026-11-20T17:03:12Z",
            },
        ]
    )
    assert [(i["codigo"], i["stock"], i["precio_mayorista"]) for i in client.items()] == [
        ("A", "1.500", None),
        ("B", "2.000", "3.00"),
    ]

    client.edit([{"codigo": "A", "stock": Decimal("7")}], after_page=1)
    assert client.items()[0]["codigo"] == "A"
    api.page()
    assert client.items()[-1]["stock"] == "7.000"

    client.edit([{"codigo": "B", "stock": "0"}], visible_after=60)
    assert client.items()[-1]["codigo"] == "A"
    client.advance(60)
    assert client.items()[-1]["codigo"] == "B"


def test_clock_operations(standin: Standin, client: StandinClient) -> None:
    client.set_clock_offset(-3600)
    now = client.now()
    assert now.utcoffset() == timedelta(hours=-3)
    assert abs(now - standin.now()) < timedelta(seconds=5)
    client.advance(7200)
    assert abs(standin.now() - (now + timedelta(hours=2))) < timedelta(seconds=5)


def test_configuration_users_and_faults(standin: Standin, client: StandinClient, api: Api) -> None:
    client.configure(token_ttl=300, version="4.2.0", request_limit_per_second=None)
    assert api.http.get("/api/version").json()["version"] == "4.2.0"
    assert api.login().json()["expira_en"] == 300

    client.add_user("panel", "clave", api_access=False)
    assert api.login("panel", "clave").status_code == 403

    client.inject(Fault("status", status=503, retry_after=9, after_requests=1))
    token = api.token
    assert [api.stock(token).status_code for _ in range(3)] == [200, 503, 200]
    client.inject(Fault("status"))
    client.clear_faults()
    assert api.stock(token).status_code == 200

    log = client.requests()
    assert log == standin.requests()
    assert log[-1]["path"] == "/api/stock"
    client.clear_requests()
    assert client.requests() == []


def test_errors_are_raised_like_in_process(client: StandinClient) -> None:
    with pytest.raises(ValueError, match="stock"):
        client.edit([{"codigo": "NEW"}])
    with pytest.raises(TypeError, match="unknown settings"):
        client.configure(colour="blue")
    with pytest.raises(ValueError):
        client.configure(token_ttl=-1)
    with pytest.raises(TypeError):
        client.load([{"codigo": "A", "stock": object()}])  # not sendable


def test_reset(standin: Standin, client: StandinClient, api: Api) -> None:
    client.generate(10)
    client.configure(version="9.9.9", token_ttl=60)
    client.add_user("otro", "clave")
    client.inject(Fault("status", times=10))
    client.set_clock_offset(86400)
    client.edit([{"codigo": "X", "stock": "1"}], after_page=1)
    token = api.login().json()["token"]

    client.reset()
    assert client.items() == []
    assert client.requests() == []
    assert abs(client.now() - standin.now()) < timedelta(seconds=5)
    assert abs(standin.now() - datetime.now().astimezone()) < timedelta(seconds=5)
    assert api.http.get("/api/version").json()["version"] == "4.3.1"
    assert api.login("otro", "clave").status_code == 401
    assert api.stock(token).status_code == 401  # tokens are gone too
    fresh = api.login().json()
    assert fresh["expira_en"] == 1800
    api.stock(fresh["token"])
    assert client.items() == []  # the pending edit is gone


def test_control_endpoints(standin: Standin, http: httpx.Client) -> None:
    assert http.get("/_control/items").json() == {"result": []}
    assert http.get("/_control/now").json()["result"].endswith("-03:00")
    assert http.post("/_control/generate", json={"n": 3}).json() == {"result": None}
    assert len(http.get("/_control/items").json()["result"]) == 3
    assert http.get("/_control/reset").status_code == 405  # changes need POST
    assert http.post("/_control/explode").status_code == 404
    assert http.post("/_control/generate", content=b"[1]").status_code == 400
    bad = http.post("/_control/generate", json={"n": 3, "colour": "blue"})
    assert bad.status_code == 400
    assert bad.json()["error"]["tipo"] == "TypeError"
