"""Deterministic generated catalogs, for tests, demos and benchmarks.

`generate(n, seed)` always gives the same catalog for the same `n` and `seed`,
including `modificado`: timestamps are laid out relative to a fixed moment,
`GENERATION_EPOCH` (2026-11-01T00:00:00-03:00), never relative to now. Every
generated item was modified in the 30 days before that moment, so on any stand-in
clock after it the whole catalog lies in the past. About one item in ten belongs
to one of a few bulk edits and shares its `modificado` with thousands of others,
as a price-list update in NonSistemas does.

Codes are a family prefix and a zero-padded number, unique: `ACE-0001`,
`YER-0042`. The number has 4 digits, more when a family has more than 9,999 items.

`generated_items(n, seed)` returns the same catalog as API-style dicts, so that a
product demo can build a store catalog matching the stand-in's.
"""

import json
import random
from datetime import datetime
from decimal import Decimal
from typing import Any

from .catalog import Item, encode_item
from .clock import LOCAL_TZ

GENERATION_EPOCH = datetime(2026, 11, 1, tzinfo=LOCAL_TZ)
SPREAD_SECONDS = 30 * 24 * 3600
BULK_EDITS = 5
BULK_SHARE = 0.10

# (prefix, product, sizes, packagings, sold by weight)
FAMILIES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], bool], ...] = (
    ("ACE", "Aceite girasol", ("900 ml", "1.5 L", "5 L"), ("caja x12", "caja x6"), False),
    ("ARR", "Arroz largo fino", ("500 g", "1 kg"), ("fardo x10", "bolsa x20"), False),
    ("AZU", "Azúcar común", ("1 kg", "5 kg"), ("fardo x10", "bolsa x4"), False),
    ("FID", "Fideos secos", ("500 g", "1 kg"), ("caja x20", "fardo x10"), False),
    ("HAR", "Harina de trigo 000", ("1 kg", "25 kg"), ("fardo x10", "bolsa"), False),
    ("YER", "Yerba mate con palo", ("500 g", "1 kg"), ("caja x10", "caja x20"), False),
    ("GAL", "Galletitas de agua", ("3 x 100 g", "250 g"), ("caja x24", "caja x36"), False),
    ("LEC", "Leche larga vida", ("1 L",), ("caja x12",), False),
    ("CAF", "Café molido", ("250 g", "500 g"), ("caja x10", "caja x6"), False),
    ("DUL", "Dulce de leche", ("400 g", "1 kg"), ("caja x12", "caja x6"), False),
    ("DET", "Detergente", ("500 ml", "750 ml"), ("caja x12", "caja x15"), False),
    ("LAV", "Lavandina", ("1 L", "2 L"), ("caja x12", "caja x8"), False),
    ("JAB", "Jabón en polvo", ("800 g", "3 kg"), ("caja x10", "caja x4"), False),
    ("PAP", "Papel higiénico", ("4 rollos 30 m", "6 rollos 80 m"), ("bolsón x12",), False),
    ("GAS", "Gaseosa cola", ("1.5 L", "2.25 L"), ("pack x6", "pack x8"), False),
    ("VIN", "Vino tinto malbec", ("750 ml",), ("caja x6", "caja x12"), False),
    ("QUE", "Queso cremoso", ("horma",), ("por kg",), True),
    ("JAM", "Jamón cocido", ("pieza",), ("por kg",), True),
    ("SAL", "Salame tandilero", ("pieza",), ("por kg",), True),
)
BRANDS = ("Don Anselmo", "La Pradera", "El Molino", "Santa Clara", "Del Sur", "Cordillera")


def generate(n: int, seed: int = 1) -> list[Item]:
    """n items, the same for the same n and seed."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    epoch = int(GENERATION_EPOCH.timestamp())
    bulk_moments = sorted(epoch - rng.randrange(SPREAD_SECONDS) for _ in range(BULK_EDITS))

    families = [rng.randrange(len(FAMILIES)) for _ in range(n)]
    counts = [0] * len(FAMILIES)
    for family in families:
        counts[family] += 1
    widths = [max(4, len(str(count))) for count in counts]
    numbers = [0] * len(FAMILIES)

    items: list[Item] = []
    append = items.append
    random_ = rng.random
    randrange = rng.randrange
    choice = rng.choice
    for family in families:
        prefix, product, sizes, packs, by_weight = FAMILIES[family]
        numbers[family] += 1
        codigo = f"{prefix}-{numbers[family]:0{widths[family]}d}"
        descripcion = f"{product} {choice(BRANDS)} {choice(sizes)} {choice(packs)}"

        roll = random_()
        if roll < 0.01:
            # NonSistemas lets a sale go through without stock.
            stock = Decimal(-randrange(1, 50))
        elif roll < 0.06:
            stock = Decimal(0)
        elif by_weight:
            stock = Decimal(randrange(1, 200_000)).scaleb(-3)
        else:
            stock = Decimal(randrange(1, 2_000))

        roll = random_()
        if roll < 0.02:
            price: Decimal | None = None
        elif roll < 0.75:
            price = Decimal(randrange(300, 250_000) * 100).scaleb(-2)
        else:
            price = Decimal(randrange(30_000, 25_000_000)).scaleb(-2)

        moneda = "USD" if random_() < 0.03 else "ARS"
        activo = random_() >= 0.03
        if random_() < BULK_SHARE:
            modificado = choice(bulk_moments)
        else:
            modificado = epoch - 1 - randrange(SPREAD_SECONDS)
        append(Item(codigo, descripcion, stock, price, moneda, activo, modificado))
    return items


def generated_items(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """The generated catalog as the API serializes it, in generation order.

    The dicts can be passed back to `Standin.load()` unchanged.
    """
    encoded = b"[" + b", ".join(encode_item(item, False) for item in generate(n, seed)) + b"]"
    result: list[dict[str, Any]] = json.loads(encoded)
    return result
