"""The instance's own clock, and token expiry measured on it."""

from datetime import UTC, datetime, timedelta

import httpx

from nonsistemas_standin import Standin

from .conftest import Api


def hora_servidor(api: Api) -> datetime:
    return datetime.fromisoformat(api.page()["hora_servidor"])


def test_now_is_aware_local_time(standin: Standin) -> None:
    now = standin.now()
    assert now.utcoffset() == timedelta(hours=-3)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_clock_offset_shows_in_hora_servidor(standin: Standin, api: Api) -> None:
    standin.set_clock_offset(-600)  # the instance runs ten minutes late
    served = hora_servidor(api)
    assert served.utcoffset() == timedelta(hours=-3)
    assert abs(served - (datetime.now(UTC) - timedelta(minutes=10))) < timedelta(seconds=5)
    assert abs(standin.now() - served) < timedelta(seconds=5)

    standin.set_clock_offset(0)  # set, not added
    assert abs(hora_servidor(api) - datetime.now(UTC)) < timedelta(seconds=5)


def test_advance_adds_to_the_offset(standin: Standin, api: Api) -> None:
    before = standin.now()
    standin.advance(3600)
    standin.advance(1800)
    assert timedelta(minutes=90) <= standin.now() - before < timedelta(minutes=90, seconds=5)
    assert hora_servidor(api) - before.replace(microsecond=0) >= timedelta(minutes=90)


def test_edits_are_stamped_with_the_instance_clock(standin: Standin, api: Api) -> None:
    standin.set_clock_offset(86400)
    standin.edit([{"codigo": "A", "stock": "1"}])
    modificado = datetime.fromisoformat(api.page()["items"][0]["modificado"])
    assert abs(modificado - (datetime.now(UTC) + timedelta(days=1))) < timedelta(seconds=5)


def test_token_expires_on_the_instance_clock(standin: Standin, api: Api) -> None:
    token = api.token
    standin.advance(1799)
    assert api.stock(token).status_code == 200
    standin.advance(1)
    expired = api.stock(token)
    assert expired.status_code == 401
    assert expired.json()["error"]["codigo"] == "token_vencido"
    assert api.stock(token).status_code == 401  # every call, from now on

    fresh = api.login().json()["token"]
    assert fresh != token
    assert api.stock(fresh).status_code == 200


def test_short_token_ttl(standin: Standin, api: Api) -> None:
    standin.configure(token_ttl=300)
    login = api.login().json()
    assert login["expira_en"] == 300
    standin.advance(300)
    assert api.stock(login["token"]).json()["error"]["codigo"] == "token_vencido"


def test_token_ttl_at_start() -> None:
    with (
        Standin.start(token_ttl=300) as standin,
        httpx.Client(base_url=standin.url, trust_env=False) as http,
    ):
        body = {"usuario": "api-ventas", "clave": "s3cret"}
        assert http.post("/api/login", json=body).json()["expira_en"] == 300
