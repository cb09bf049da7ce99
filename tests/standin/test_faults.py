"""Every injectable fault, and how faults are matched and counted."""

import json
import threading
import time

import httpx
import pytest

from nonsistemas_standin import FAULT_KINDS, Fault, Standin

from .conftest import Api


@pytest.fixture(autouse=True)
def _catalog(standin: Standin) -> None:
    standin.generate(40)
    standin.configure(request_limit_per_second=None)


def error_codigo(response: httpx.Response) -> str:
    codigo: str = response.json()["error"]["codigo"]
    return codigo


@pytest.mark.parametrize(
    ("status", "codigo"),
    [(500, "error_interno"), (503, "servicio_no_disponible"), (429, "demasiadas_solicitudes")],
)
def test_status_with_the_contracts_body(
    standin: Standin, api: Api, status: int, codigo: str
) -> None:
    token = api.token
    standin.inject(Fault("status", status=status))
    response = api.stock(token)
    assert response.status_code == status
    assert error_codigo(response) == codigo
    assert api.stock(token).status_code == 200  # times=1


def test_status_defaults_and_retry_after(standin: Standin, api: Api) -> None:
    token = api.token
    standin.inject(Fault("status"))
    assert api.stock(token).status_code == 500
    standin.inject(Fault("status", status=503, retry_after=30))
    assert api.stock(token).headers["retry-after"] == "30"
    standin.inject(Fault("status", status=503))
    assert "retry-after" not in api.stock(token).headers  # "may carry"
    standin.inject(Fault("status", status=429))
    assert api.stock(token).headers["retry-after"] == "1"  # a 429 always does


def test_status_outside_the_table_is_generic(standin: Standin, api: Api) -> None:
    standin.inject(Fault("status", status=418))
    response = api.stock()
    assert response.status_code == 418
    assert set(response.json()["error"]) == {"codigo", "mensaje"}


@pytest.mark.parametrize("status", [None, 503, 504])
def test_html_error_page_from_a_proxy(standin: Standin, api: Api, status: int | None) -> None:
    standin.inject(Fault("html", status=status))
    response = api.stock()
    assert response.status_code == (status or 502)
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{status or 502} " in response.text
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_delay_then_a_normal_answer(standin: Standin, api: Api) -> None:
    token = api.token
    standin.inject(Fault("delay", delay=0.3))
    started = time.perf_counter()
    response = api.stock(token, por_pagina=5)
    print(f"delayed answer after {time.perf_counter() - started:.2f} s (delay 0.3 s)")
    assert response.status_code == 200
    assert len(response.json()["items"]) == 5
    assert standin.requests()[-1]["fault"] == "delay"


def test_delay_does_not_hold_other_clients(standin: Standin, api: Api) -> None:
    token = api.token
    standin.inject(Fault("delay", path="/api/version", delay=1.0))
    with httpx.Client(base_url=standin.url, trust_env=False) as slow:
        result: list[int] = []
        worker = threading.Thread(
            target=lambda: result.append(slow.get("/api/version").status_code)
        )
        worker.start()
        assert api.stock(token).status_code == 200
        worker.join()
    assert result == [200]
    # Whichever request reached the server first, the slow one is logged last: its
    # sleep held nothing the other request needed.
    assert [entry["path"] for entry in standin.requests()][-2:] == ["/api/stock", "/api/version"]


def test_reset_drops_the_connection(standin: Standin, api: Api, http: httpx.Client) -> None:
    token = api.token
    standin.inject(Fault("reset"))
    with pytest.raises(httpx.TransportError):
        api.stock(token)
    assert api.stock(token).status_code == 200  # a new connection works
    assert standin.requests()[-2]["status"] is None


def test_malformed_json(standin: Standin, api: Api) -> None:
    standin.inject(Fault("malformed_json"))
    response = api.stock()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_truncated_json(standin: Standin, api: Api) -> None:
    token = api.token
    whole = api.stock(token, por_pagina=10).content
    standin.inject(Fault("truncated_json"))
    response = api.stock(token, por_pagina=10)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_truncated_page_does_not_count_for_after_page(standin: Standin, api: Api) -> None:
    token = api.token
    first = standin.items()[0]["codigo"]
    standin.edit([{"codigo": first, "stock": "0"}], after_page=1)
    standin.inject(Fault("truncated_json"))
    api.stock(token)
    assert standin.items()[0]["codigo"] == first
    api.stock(token)
    assert standin.items()[-1]["codigo"] == first


def test_token_expired_whatever_the_token(standin: Standin, api: Api) -> None:
    token = api.token
    standin.inject(Fault("token_expired"))
    response = api.stock(token)
    assert response.status_code == 401
    assert error_codigo(response) == "token_vencido"
    assert api.stock(token).status_code == 200


def test_not_nonsistemas(standin: Standin, http: httpx.Client) -> None:
    standin.inject(Fault("not_nonsistemas", path="/api/version"))
    response = http.get("/api/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "NonSistemas" not in response.text
    assert http.get("/api/version").json()["producto"] == "NonSistemas"


def test_times_and_after_requests(standin: Standin, api: Api) -> None:
    token = api.token
    standin.inject(Fault("status", status=503, times=2, after_requests=1))
    assert [api.stock(token).status_code for _ in range(4)] == [200, 503, 503, 200]


def test_path_matching(standin: Standin, api: Api, http: httpx.Client) -> None:
    token = api.token
    standin.inject(Fault("status", path="/api/login"))
    assert api.stock(token).status_code == 200
    assert http.get("/api/version").status_code == 200
    assert api.login().status_code == 500

    standin.inject(Fault("html", path="*", times=3))
    assert [r.status_code for r in (http.get("/api/version"), api.login(), http.get("/x"))] == [
        502,
        502,
        502,
    ]
    assert http.get("/api/version").status_code == 200


def test_every_matching_fault_counts_the_request(standin: Standin, api: Api) -> None:
    token = api.token
    standin.inject(Fault("status", status=500))
    standin.inject(Fault("status", status=503, after_requests=1))
    assert [api.stock(token).status_code for _ in range(3)] == [500, 503, 200]


def test_clear_faults(standin: Standin, api: Api) -> None:
    token = api.token
    standin.inject(Fault("status", times=5))
    standin.clear_faults()
    assert api.stock(token).status_code == 200


def test_faults_are_logged(standin: Standin, api: Api) -> None:
    token = api.token
    standin.clear_requests()
    standin.inject(Fault("status", status=503))
    api.stock(token, pagina=2)
    api.stock(token, pagina=2)
    log = standin.requests()
    assert [(e["path"], e["query"], e["status"], e["fault"]) for e in log] == [
        ("/api/stock", {"pagina": "2"}, 503, "status"),
        ("/api/stock", {"pagina": "2"}, 200, None),
    ]
    assert all(e["method"] == "GET" and e["at"].endswith("-03:00") for e in log)
    standin.clear_requests()
    assert standin.requests() == []


def test_fault_validation() -> None:
    assert len(FAULT_KINDS) == 8
    with pytest.raises(ValueError):
        Fault("explode")
    with pytest.raises(ValueError):
        Fault("status", times=0)
    with pytest.raises(ValueError):
        Fault("status", path="api/stock")
