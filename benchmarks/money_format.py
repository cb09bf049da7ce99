"""How long formatting prices and counts takes per language (catalog/templatetags/money.py).

Babel formats through CLDR data, which is slower than the f-string it replaced;
this prints what that costs per call and for a catalog page (100 rows, two
numbers each), so the choice stays a measured one.

    .venv/bin/python benchmarks/money_format.py
"""

import os
import platform
import time
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vxm.settings")
django.setup()

from django.utils import translation  # noqa: E402

from catalog.templatetags.money import money, thousands  # noqa: E402

CALLS = 100_000


def per_call(function, value, *args) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in range(CALLS):
        function(value, *args)
    return (time.perf_counter() - started) / CALLS


def main() -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    for language in ("es-ar", "en"):
        with translation.override(language):
            price = per_call(money, Decimal("18250.50"), "ARS")
            count = per_call(thousands, 1_250_000)
        page = 100 * (price + count)
        print(
            f"{language:6} money {price * 1e6:6.1f} µs/call  thousands {count * 1e6:6.1f} µs/call"
            f"  a 100-row catalog page {page * 1e3:5.2f} ms"
        )


if __name__ == "__main__":
    main()
