"""The contract's examples and rules, as written in shared/nonsistemas-api.md."""

import re
from decimal import Decimal
from typing import Any

import httpx
import pytest

from nonsistemas_standin import Fault, Standin

from .conftest import Api

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-03:00$")

EXAMPLE_ITEM = {
    "codigo": "ACE-0001",
    "descripcion": "Aceite girasol 1.5 L caja x12",
    "stock": "340.000",
    "precio_mayorista": "18250.00",
    "moneda": "ARS",
    "activo": True,
    "modificado": "2026-11-20T14:03:11-03:00",
}


def stocked(codigo: str, modificado: str, **fields: Any) -> dict[str, Any]:
    return {
        "codigo": codigo,
        "stock": "1",
        "precio_mayorista": "10",
        "modificado": modificado,
    } | fields


def test_version_example(http: httpx.Client) -> None:
    response = http.get("/api/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"producto": "NonSistemas", "version": "4.3.1"}


def test_login_example(http: httpx.Client) -> None:
    response = http.post("/api/login", json={"usuario": "api-ventas", "clave": "s3cret"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "tipo", "expira_en"}
    assert re.fullmatch(r"[0-9a-f]{32}", body["token"])
    assert body["tipo"] == "Bearer"
    assert body["expira_en"] == 1800


def test_tokens_are_fresh_at_each_login(api: Api) -> None:
    assert api.login().json()["token"] != api.login().json()["token"]


def test_stock_example(standin: Standin, api: Api) -> None:
    standin.load([EXAMPLE_ITEM])
    response = api.stock()
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "pagina",
        "por_pagina",
        "total_items",
        "total_paginas",
        "hora_servidor",
        "items",
    ]
    assert body["pagina"] == 1
    assert body["por_pagina"] == 500  # the default
    assert body["total_items"] == 1
    assert body["total_paginas"] == 1
    assert TIMESTAMP.match(body["hora_servidor"])
    assert body["items"] == [EXAMPLE_ITEM]


def test_paging_fields_of_the_example(standin: Standin, api: Api) -> None:
    standin.generate(3120)
    body = api.page(pagina=1, por_pagina=500)
    assert (body["total_items"], body["total_paginas"], len(body["items"])) == (3120, 7, 500)
    last = api.page(pagina=7, por_pagina=500)
    assert (last["pagina"], len(last["items"])) == (7, 120)


def test_error_body_example(standin: Standin, api: Api) -> None:
    token = api.token
    standin.advance(1800)
    response = api.stock(token)
    assert response.status_code == 401
    assert response.json() == {"error": {"codigo": "token_vencido", "mensaje": "El token expiró"}}


def assert_error(response: httpx.Response, status: int, codigo: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    assert set(body["error"]) == {"codigo", "mensaje"}
    assert body["error"]["codigo"] == codigo
    assert isinstance(body["error"]["mensaje"], str) and body["error"]["mensaje"]


def test_every_error_of_the_table(standin: Standin, api: Api, http: httpx.Client) -> None:
    assert_error(api.stock(pagina=0), 400, "parametro_invalido")
    assert_error(api.login(clave="wrong"), 401, "credenciales_invalidas")
    assert_error(api.login(usuario="nobody"), 401, "credenciales_invalidas")
    assert_error(http.get("/api/stock"), 401, "token_invalido")
    assert_error(api.stock("0" * 32), 401, "token_invalido")
    expired = api.login().json()["token"]
    standin.advance(1800)
    assert_error(api.stock(expired), 401, "token_vencido")
    standin.add_user("panel-web", "clave", api_access=False)
    assert_error(api.login("panel-web", "clave"), 403, "acceso_api_deshabilitado")
    standin.inject(Fault("status", status=429))
    assert_error(api.stock(api.login().json()["token"]), 429, "demasiadas_solicitudes")
    standin.inject(Fault("status", status=500))
    assert_error(api.stock(), 500, "error_interno")
    standin.inject(Fault("status", status=503))
    assert_error(api.stock(), 503, "servicio_no_disponible")


def test_authorization_must_be_a_bearer_token(api: Api, http: httpx.Client) -> None:
    token = api.token
    for header in (token, f"Basic {token}", "Bearer", ""):
        response = http.get("/api/stock", headers={"Authorization": header})
        assert_error(response, 401, "token_invalido")
    assert http.get("/api/stock", headers={"Authorization": f"bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"pagina": "0"},
        {"pagina": "-1"},
        {"pagina": "abc"},
        {"pagina": "1.5"},
        {"pagina": ""},
        {"pagina": "+1"},
        {"pagina": " 1"},
        {"por_pagina": "0"},
        {"por_pagina": "1001"},
        {"por_pagina": "x"},
        {"por_pagina": ""},
        {"desde": "ayer"},
        {"desde": "2026-13-01T00:00:00-03:00"},
        {"desde": "2026-11-20T14:03:11+0x:00"},
        {"desde": ""},
    ],
)
def test_bad_parameters_are_400(api: Api, params: dict[str, str]) -> None:
    assert_error(api.stock(**params), 400, "parametro_invalido")


def test_por_pagina_bounds(standin: Standin, api: Api) -> None:
    standin.generate(1500)
    assert len(api.page(por_pagina=1000)["items"]) == 1000
    assert len(api.page(por_pagina=1)["items"]) == 1
    assert_error(api.stock(por_pagina=1001), 400, "parametro_invalido")


def test_unencoded_plus_in_desde_is_rejected(api: Api, http: httpx.Client) -> None:
    # A client that forgets to encode "+" sends a space in the offset.
    raw = "/api/stock?desde=2026-11-20T14:03:11+03:00"
    response = http.get(raw, headers={"Authorization": f"Bearer {api.token}"})
    assert_error(response, 400, "parametro_invalido")


def test_number_formats(standin: Standin, api: Api) -> None:
    t = "2026-11-20T14:03:11-03:00"
    standin.load(
        [
            stocked("A", t, stock=340, precio_mayorista=Decimal("18250")),
            stocked("B", t, stock="12.3456", precio_mayorista="0.5"),
            stocked("C", t, stock=Decimal("-3"), precio_mayorista=None),
            stocked("D", t, stock="0", precio_mayorista="1234567.891"),
        ]
    )
    got = {i["codigo"]: (i["stock"], i["precio_mayorista"]) for i in api.page()["items"]}
    assert got == {
        "A": ("340.000", "18250.00"),
        "B": ("12.346", "0.50"),
        "C": ("-3.000", None),
        "D": ("0.000", "1234567.89"),
    }


def test_timestamps_are_served_in_local_time(standin: Standin, api: Api) -> None:
    standin.load(
        [
            stocked("Z", "2026-11-20T17:03:11Z"),
            stocked("OFFSET", "2026-11-20T12:03:11.900-05:00"),
            stocked("LOCAL", "2026-11-20T14:03:11"),
        ]
    )
    modificados = {i["codigo"]: i["modificado"] for i in api.page()["items"]}
    assert modificados == dict.fromkeys(("LOCAL", "OFFSET", "Z"), "2026-11-20T14:03:11-03:00")


def test_desde_is_inclusive(standin: Standin, api: Api) -> None:
    standin.load(
        [
            stocked("BEFORE", "2026-11-20T14:03:10-03:00"),
            stocked("AT", "2026-11-20T14:03:11-03:00"),
            stocked("AFTER", "2026-11-20T14:03:12-03:00"),
        ]
    )
    assert api.codes(desde="2026-11-20T14:03:11-03:00") == ["AT", "AFTER"]
    assert api.codes(desde="2026-11-20T14:03:11.500-03:00") == ["AFTER"]
    assert api.codes(desde="2026-11-20T14:03:13-03:00") == []


@pytest.mark.parametrize(
    "desde",
    [
        "2026-11-20T14:03:11-03:00",
        "2026-11-20T17:03:11Z",
        "2026-11-20T17:03:11+00:00",
        "2026-11-20T12:03:11-05:00",
        "2026-11-20T14:03:11",  # no offset: the instance's time zone
    ],
)
def test_desde_with_z_offset_or_none(standin: Standin, api: Api, desde: str) -> None:
    standin.load(
        [
            stocked("OLD", "2026-11-20T14:03:10-03:00"),
            stocked("NEW", "2026-11-20T14:03:11-03:00"),
        ]
    )
    body = api.page(desde=desde)
    assert [i["codigo"] for i in body["items"]] == ["NEW"]
    assert body["total_items"] == 1


def test_page_beyond_the_end_is_empty(standin: Standin, api: Api) -> None:
    standin.generate(30)
    body = api.page(pagina=4, por_pagina=10)
    assert body["items"] == []
    assert (body["pagina"], body["total_items"], body["total_paginas"]) == (4, 30, 3)


def test_empty_catalog(api: Api) -> None:
    body = api.page()
    assert (body["total_items"], body["total_paginas"], body["items"]) == (0, 0, [])


def test_item_fields_as_kept_by_nonsistemas(standin: Standin, api: Api) -> None:
    t = "2026-11-20T14:03:11-03:00"
    standin.load(
        [
            stocked(" ace-0001 ", t),
            stocked("ACE-0001", t, moneda="USD", activo=False, descripcion="Ñandú ½ kg"),
        ]
    )
    items = api.page()["items"]
    # Codes as typed, spaces and case included, ordered by code after modificado.
    assert [i["codigo"] for i in items] == [" ace-0001 ", "ACE-0001"]
    assert items[1] == {
        "codigo": "ACE-0001",
        "descripcion": "Ñandú ½ kg",
        "stock": "1.000",
        "precio_mayorista": "10.00",
        "moneda": "USD",
        "activo": False,
        "modificado": t,
    }


def test_unknown_path_is_404_json(http: httpx.Client) -> None:
    assert_error(http.get("/api/nada"), 404, "no_encontrado")
    assert_error(http.get("/"), 404, "no_encontrado")


def test_wrong_method_is_405(http: httpx.Client) -> None:
    response = http.get("/api/login")
    assert_error(response, 405, "metodo_no_permitido")
    assert response.headers["allow"] == "POST"
    assert http.post("/api/stock").status_code == 405


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"usuario": "api-ventas"}', b'{"usuario": 1, "clave": "s3cret"}', b""],
)
def test_malformed_login_body_is_400(http: httpx.Client, body: bytes) -> None:
    response = http.post("/api/login", content=body)
    assert_error(response, 400, "parametro_invalido")


def test_keep_alive_and_content_length(standin: Standin, api: Api, http: httpx.Client) -> None:
    standin.generate(10)
    responses = [http.get("/api/version"), api.stock(), http.get("/api/nada")]
    for response in responses:
        assert int(response.headers["content-length"]) == len(response.content)
        assert response.headers.get("connection") != "close"
    assert responses[0].http_version == "HTTP/1.1"
