"""The yardstick `benchmarks/sync.py` measures the project against: the least code
that does an update's essential work, with none of the product's guarantees.

It logs in, pages through `GET /api/stock` (1,000 items a page, plain offset
paging), parses each page with orjson (the standard json module if orjson is
missing) and upserts code, stock and price into one SQLite table with
`executemany`, all in one transaction. No SKU matching rules, no history, no run
records, no retries, no URL guard, no rate limiting of its own: what is left is
the cost of HTTP, parsing and writing rows, which no update can avoid.
"""

import sqlite3
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

try:
    import orjson

    def loads(data: bytes) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - a dev dependency; json is the fallback
    import json

    def loads(data: bytes) -> Any:
        return json.loads(data)


SCHEMA = """
CREATE TABLE IF NOT EXISTS item (
    sku TEXT PRIMARY KEY,
    stock INTEGER NOT NULL,
    price TEXT NOT NULL
)
"""

UPSERT = """
INSERT INTO item (sku, stock, price) VALUES (?, ?, ?)
ON CONFLICT (sku) DO UPDATE SET stock = excluded.stock, price = excluded.price
"""


def prepare(path: Path, items: Iterable[tuple[str, int, Decimal]]) -> None:
    """A store table holding the same items the product's store holds."""
    db = sqlite3.connect(path)
    with db:
        db.execute(SCHEMA)
        db.executemany(UPSERT, ((sku, stock, str(price)) for sku, stock, price in items))
    db.close()


def run(base_url: str, user: str, password: str, path: Path, since: str | None) -> int:
    """One update; returns the number of items written."""
    written = 0
    db = sqlite3.connect(path)
    # The product's SQLite settings: WAL, synchronous=NORMAL.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    with httpx.Client(base_url=base_url, timeout=60) as http:
        token = http.post("/api/login", json={"usuario": user, "clave": password}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        page = 1
        with db:
            while True:
                params: dict[str, str | int] = {"pagina": page, "por_pagina": 1000}
                if since:
                    params["desde"] = since
                response = http.get("/api/stock", params=params, headers=headers)
                response.raise_for_status()
                body = loads(response.content)
                rows = [
                    (
                        item["codigo"].strip(),
                        max(0, int(Decimal(str(item["stock"])))),
                        str(item["precio_mayorista"]),
                    )
                    for item in body["items"]
                ]
                db.executemany(UPSERT, rows)
                written += len(rows)
                if page >= body["total_paginas"]:
                    break
                page += 1
    db.close()
    return written


def timed(base_url: str, user: str, password: str, path: Path, since: str | None) -> float:
    """Seconds one update takes."""
    started = time.perf_counter()
    run(base_url, user, password, path, since)
    return time.perf_counter() - started
