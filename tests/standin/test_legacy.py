"""Instances older than 4.2: numbers as JSON numbers, no moneda, activo only when false."""

from typing import Any

import httpx

from nonsistemas_standin import Standin

from .conftest import PASSWORD, USER, Api

ITEMS: list[dict[str, Any]] = [
    {
        "codigo": "ACE-0001",
        "stock": "340",
        "precio_mayorista": "18250.50",
        "modificado": "2026-11-20T14:03:11-03:00",
    },
    {
        "codigo": "QUE-0001",
        "stock": "-12.250",
        "precio_mayorista": None,
        "moneda": "USD",
        "activo": False,
        "modificado": "2026-11-20T14:03:12-03:00",
    },
]


def test_legacy_numbers(standin: Standin, api: Api, http: httpx.Client) -> None:
    standin.load(ITEMS)
    api.page()  # serialized once in the modern format, then switched
    standin.configure(legacy_numbers=True, version="4.1.0")

    assert http.get("/api/version").json() == {"producto": "NonSistemas", "version": "4.1.0"}
    response = api.stock()
    assert '"stock": 340,' in response.text
    assert '"precio_mayorista": 18250.5,' in response.text
    assert response.json()["items"] == [
        {
            "codigo": "ACE-0001",
            "descripcion": "",
            "stock": 340,
            "precio_mayorista": 18250.5,
            "modificado": "2026-11-20T14:03:11-03:00",
        },
        {
            "codigo": "QUE-0001",
            "descripcion": "",
            "stock": -12.25,
            "precio_mayorista": None,
            "activo": False,
            "modificado": "2026-11-20T14:03:12-03:00",
        },
    ]
    assert standin.items() == response.json()["items"]

    standin.configure(legacy_numbers=False)
    assert [i["stock"] for i in api.page()["items"]] == ["340.000", "-12.250"]


def test_legacy_from_start_survives_reset() -> None:
    settings = {"legacy_numbers": True, "version": "4.1.0"}
    with (
        Standin.start(user=USER, password=PASSWORD, settings=settings) as standin,
        httpx.Client(base_url=standin.url, trust_env=False) as http,
    ):
        standin.reset()
        assert http.get("/api/version").json()["version"] == "4.1.0"
        standin.load(ITEMS[:1])
        token = http.post("/api/login", json={"usuario": USER, "clave": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        assert http.get("/api/stock", headers=headers).json()["items"][0]["stock"] == 340
