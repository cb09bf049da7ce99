"""Deterministic generated catalogs, and how fast a big one is made and served."""

import re
import statistics
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal

import httpx

from nonsistemas_standin import GENERATION_EPOCH, Standin, generated_items
from nonsistemas_standin.generation import generate

from .conftest import PASSWORD, USER


def test_same_n_and_seed_same_catalog(standin: Standin) -> None:
    standin.generate(2000, seed=42)
    first = standin.items()
    standin.generate(2000, seed=42)
    assert standin.items() == first
    standin.generate(2000, seed=43)
    assert standin.items() != first


def test_generated_items_match_the_served_catalog(standin: Standin) -> None:
    listed = generated_items(500, seed=9)
    standin.generate(500, seed=9)
    served = standin.items()
    assert sorted(listed, key=lambda i: i["codigo"]) == sorted(served, key=lambda i: i["codigo"])
    standin.load(listed)  # usable as a catalog as they are
    assert standin.items() == served


def test_codes(standin: Standin) -> None:
    codes = [i["codigo"] for i in generated_items(300, seed=1)]
    assert len(set(codes)) == 300
    assert all(re.fullmatch(r"[A-Z]{3}-\d{4}", code) for code in codes)
    numbers = {code for code in codes if code.startswith("ACE-")}
    assert "ACE-0001" in numbers
    # Past 9,999 items in a family, its numbers get a fifth digit.
    big = [item.codigo for item in generate(200_000, seed=1)[:50]]
    assert all(re.fullmatch(r"[A-Z]{3}-\d{5}", code) for code in big)


def test_a_realistic_mix() -> None:
    items = generated_items(20_000, seed=1)
    stocks = [Decimal(i["stock"]) for i in items]
    assert sum(s < 0 for s in stocks) > 20  # sold without stock
    assert sum(s != s.to_integral_value() for s in stocks) > 200  # sold by weight
    assert sum(s > 0 and s == s.to_integral_value() for s in stocks) > len(items) * 0.7
    assert 50 < sum(i["precio_mayorista"] is None for i in items) < 1000
    assert Counter(i["moneda"] for i in items).keys() == {"ARS", "USD"}
    assert 100 < sum(not i["activo"] for i in items) < 2000
    assert any("ó" in i["descripcion"] or "ú" in i["descripcion"] for i in items)
    moments = [datetime.fromisoformat(i["modificado"]) for i in items]
    assert max(moments) < GENERATION_EPOCH
    assert (GENERATION_EPOCH - min(moments)).days <= 30
    # Bulk edits: thousands of items share one modificado, to the second.
    assert Counter(moments).most_common(1)[0][1] > 100


def test_generation_does_not_depend_on_now() -> None:
    assert GENERATION_EPOCH.isoformat() == "2026-11-01T00:00:00-03:00"
    assert generated_items(50, seed=5) == generated_items(50, seed=5)


def test_performance_figures() -> None:
    """Prints figures (run with -s to see them); asserts only what was served."""
    started = time.perf_counter()
    with Standin.start(user=USER, password=PASSWORD, items=300_000) as standin:
        generated = time.perf_counter() - started
        standin.configure(request_limit_per_second=None)
        with httpx.Client(base_url=standin.url, trust_env=False) as http:
            login = http.post("/api/login", json={"usuario": USER, "clave": PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['token']}"}

            def page(n: int, **extra: str) -> float:
                params: dict[str, str | int] = {"pagina": n, "por_pagina": 1000, **extra}
                started = time.perf_counter()
                response = http.get("/api/stock", params=params, headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200
                assert len(response.json()["items"]) == 1000
                return elapsed

            cold = [page(n) for n in range(1, 11)]
            warm = [page(n) for n in range(1, 11)]
            desde = {"desde": "2026-10-15T00:00:00-03:00"}
            filtered = [page(n, **desde) for n in range(1, 11)]
            standin.edit([{"codigo": "ACE-00001", "stock": "1"}])
            after_edit = [page(n) for n in range(1, 11)]

    def ms(samples: list[float]) -> str:
        return f"{statistics.median(samples) * 1000:.1f} ms"

    print(
        f"\n300,000 items generated and indexed in {generated:.2f} s; "
        f"1000-item page over HTTP (median of 10): first serve {ms(cold)}, "
        f"cached {ms(warm)}, with desde {ms(filtered)}, after an edit {ms(after_edit)}"
    )
