"""Login and request rate limits, and their Retry-After."""

from collections.abc import Iterator

import httpx
import pytest

from nonsistemas_standin import Standin
from nonsistemas_standin.ratelimit import SlidingWindowLimiter

from .conftest import Api


def assert_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["codigo"] == "demasiadas_solicitudes"
    return int(response.headers["retry-after"])


def test_login_limit_is_five_a_minute_per_user(standin: Standin, api: Api) -> None:
    for _ in range(5):
        assert api.login().status_code == 200
    retry_after = assert_limited(api.login())
    assert 1 <= retry_after <= 60
    standin.add_user("otro", "clave")
    assert api.login("otro", "clave").status_code == 200  # per user


def test_failed_logins_count_too(api: Api) -> None:
    for _ in range(5):
        assert api.login(clave="wrong").status_code == 401
    assert_limited(api.login())


def test_login_limit_is_configurable(standin: Standin, api: Api) -> None:
    standin.configure(login_limit_per_minute=2)
    assert [api.login().status_code for _ in range(3)] == [200, 200, 429]
    standin.configure(login_limit_per_minute=None)
    assert {api.login().status_code for _ in range(12)} == {200}


def test_request_limit_is_ten_a_second_per_user(standin: Standin, api: Api) -> None:
    token = api.token
    assert [api.stock(token).status_code for _ in range(10)] == [200] * 10
    assert assert_limited(api.stock(token)) == 1
    standin.add_user("otro", "clave")
    other = api.login("otro", "clave").json()["token"]
    assert api.stock(other).status_code == 200


def test_request_limit_is_configurable(standin: Standin, api: Api) -> None:
    token = api.token
    standin.configure(request_limit_per_second=3)
    assert [api.stock(token).status_code for _ in range(4)] == [200, 200, 200, 429]
    standin.configure(request_limit_per_second=None)
    assert {api.stock(token).status_code for _ in range(30)} == {200}


def test_fixed_retry_after(standin: Standin, api: Api) -> None:
    standin.configure(request_limit_per_second=1, login_limit_per_minute=1, retry_after=7)
    token = api.token
    assert api.stock(token).status_code == 200
    assert assert_limited(api.stock(token)) == 7
    assert assert_limited(api.login()) == 7


def test_moving_the_instance_clock_does_not_refill(standin: Standin, api: Api) -> None:
    standin.configure(request_limit_per_second=1, token_ttl=10**6)
    token = api.token
    assert api.stock(token).status_code == 200
    standin.advance(3600)
    assert_limited(api.stock(token))


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> Iterator[FakeMonotonic]:
    yield FakeMonotonic()


def test_waiting_retry_after_gets_through(fake_time: FakeMonotonic) -> None:
    limiter = SlidingWindowLimiter(5, 60.0, fake_time)
    for second in range(5):
        fake_time.now = 1000.0 + second * 10
        assert limiter.hit("u") is None
    wait = limiter.hit("u")
    assert wait == 20  # the first hit leaves the window at 1060; now is 1040
    fake_time.now += wait - 1
    assert limiter.hit("u") == 1  # refused hits are not counted
    fake_time.now += 1
    assert limiter.hit("u") is None
    assert limiter.hit("other") is None
