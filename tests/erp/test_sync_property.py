"""No change lost (issue #4): randomized histories.

Hypothesis drives the stand-in through random catalogs (many items sharing a
second, as bulk edits make them), edits before, during (after the Nth page) and
between runs, late commits, a clock offset and faults, runs updates, and finally
checks the guarantee: after one more quiet update started once every edit is
visible, every matched store item equals what the rules say given NonSistemas'
current data.

CI runs a fixed, derandomized profile. A longer search:
    VXM_HYPOTHESIS_PROFILE=long scripts/test tests/erp/test_sync_property.py
"""

import itertools
import os
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erp.models import GuardRails, RunStatus
from erp.nonsistemas.client import NonSistemasClient
from erp.url_guard import guarded_transport
from nonsistemas_standin import Fault
from stores.models import Store
from tests.conftest import ERP_PASSWORD, ERP_USER
from tests.erp.sync_helpers import assert_catalog_matches, connect, make_items, sync

PAGE = 10
BASE = datetime.fromisoformat("2026-11-20T10:00:00-03:00")
_slugs = itertools.count()

settings.register_profile(
    "ci",
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = os.environ.get("VXM_HYPOTHESIS_PROFILE", "ci")

codes = st.integers(min_value=0, max_value=44).map(lambda i: f"C-{i:02d}")
stocks = st.one_of(
    st.integers(min_value=-5, max_value=500).map(lambda i: f"{i}.000"),
    st.decimals(min_value=0, max_value=50, places=3).map(lambda d: f"{d:.3f}"),
)
prices = st.integers(min_value=1, max_value=99999).map(lambda c: f"{Decimal(c) / 100:.2f}")
changes = st.fixed_dictionaries(
    {"codigo": codes},
    optional={"stock": stocks, "precio_mayorista": prices, "activo": st.booleans()},
)
edits = st.lists(changes, min_size=1, max_size=15, unique_by=lambda c: c["codigo"])
faults = st.one_of(
    st.none(),
    st.builds(lambda n: Fault("token_expired", after_requests=n), st.integers(0, 4)),
    st.builds(lambda n: Fault("status", status=500, after_requests=n), st.integers(0, 4)),
    st.builds(lambda n: Fault("reset", after_requests=n), st.integers(0, 4)),
    st.builds(
        lambda n: Fault("status", status=429, retry_after=0, after_requests=n), st.integers(0, 4)
    ),
    # Fails the run: two token rejections in a row.
    st.builds(lambda n: Fault("token_expired", times=2, after_requests=n), st.integers(0, 4)),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("edit"), edits),
        st.tuples(st.just("late"), edits, st.integers(1, 90)),
        st.tuples(st.just("during"), edits, st.integers(1, 4)),
        st.tuples(st.just("advance"), st.integers(0, 400)),
        st.tuples(st.just("sync"), faults, st.booleans()),
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def catalogs(draw: Any) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 40))
    # Few distinct seconds: many items share a `modificado`, as after bulk edits.
    seconds = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    return [
        {
            "codigo": f"C-{i:02d}",
            "stock": draw(stocks),
            "precio_mayorista": draw(prices),
            "moneda": "ARS",
            "activo": True,
            "modificado": (BASE + timedelta(seconds=s)).isoformat(),
        }
        for i, s in zip(range(n), seconds, strict=True)
    ]


def store_skus(draw_codes: list[int]) -> list[str]:
    # Store SKUs differ from ERP codes in case (never in surrounding spaces: a SKU is
    # stored without them, catalog.models.clean_sku).
    return [(f"c-{i:02d}" if i % 3 == 0 else f"C-{i:02d}") for i in draw_codes]


@pytest.mark.django_db(transaction=True)
def test_no_change_is_lost_across_random_histories(standin: Any, record_property: Any) -> None:
    from django.conf import settings as django_settings

    django_settings.VXM_NONSISTEMAS_PAGE_SIZE = PAGE
    checked = {"histories": 0, "edits": 0, "runs": 0, "items": 0}

    @settings(settings.get_profile(PROFILE))
    @given(
        catalog=catalogs(),
        in_store=st.lists(st.integers(0, 44), unique=True, min_size=10, max_size=45),
        history=steps,
        # The ERP's clock against ours: minutes ahead or behind, for the whole history.
        clock_offset=st.integers(-900, 900),
    )
    def history_converges(
        catalog: list[dict[str, Any]], in_store: list[int], history: list[Any], clock_offset: int
    ) -> None:
        standin.reset()
        standin.configure(request_limit_per_second=None, login_limit_per_minute=None)
        store = Store.objects.create(name="P", slug=f"p{next(_slugs)}")
        # Random histories send stock 0 and wild prices: not what is tested here.
        GuardRails.objects.create(
            store=store, zero_stock_on=False, price_on=False, full_drop_on=False
        )
        make_items(store, [(sku, 3, "1.00") for sku in store_skus(in_store)])
        before = {sku: (3, Decimal("1.00")) for sku in store_skus(in_store)}
        connect(store, standin)
        standin.load(catalog)
        standin.set_clock_offset(clock_offset)
        for step in history:
            kind = step[0]
            if kind == "edit":
                standin.edit(_complete(step[1]))
                checked["edits"] += len(step[1])
            elif kind == "late":
                standin.edit(_complete(step[1]), visible_after=step[2])
                checked["edits"] += len(step[1])
            elif kind == "during":
                standin.edit(_complete(step[1]), after_page=step[2])
                checked["edits"] += len(step[1])
            elif kind == "advance":
                standin.advance(step[1])
            elif kind == "sync":
                if step[1] is not None:
                    standin.inject(step[1])
                sync(store, full=step[2])
                standin.clear_faults()
                checked["runs"] += 1
        # Quiet: edits scheduled "after page N" that no run reached land now,
        # every late commit becomes visible, no faults.
        _serve_pages(standin, 4)
        standin.advance(200)
        final = sync(store)
        assert final.status == RunStatus.SUCCEEDED, final.error_message
        checked["items"] += assert_catalog_matches(store, standin.items(), before)
        checked["histories"] += 1

    history_converges()
    # Shown in the test run's summary (tests/conftest.py).
    record_property(
        "summary",
        f"no change lost ({PROFILE} profile): {checked['histories']} histories, "
        f"{checked['edits']} ERP edits, {checked['runs']} updates during them, "
        f"{checked['items']} store items checked after the final update",
    )
    assert checked["histories"] >= 1


def _serve_pages(standin: Any, pages: int) -> None:
    with NonSistemasClient(
        standin.url, ERP_USER, ERP_PASSWORD, transport=guarded_transport(allow_local=True)
    ) as client:
        for _ in range(pages):
            client.stock_page(desde=None, pagina=1, por_pagina=1)


def _complete(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """New items need stock and price; give every change what it lacks."""
    out = []
    for change in changes:
        change = dict(change)
        change.setdefault("stock", "1.000")
        change.setdefault("precio_mayorista", "10.00")
        out.append(change)
    return out
