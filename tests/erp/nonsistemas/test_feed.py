"""The change reader against scripted answers: paging choices and absurd responses."""

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from erp.errors import ErpError
from erp.nonsistemas import wire
from erp.nonsistemas.feed import WATERMARK_LAG, ChangeReader, page_for_offset
from erp.nonsistemas.wire import StockPage
from erp.sources import ErpItem, FeedStats

NOW = datetime.fromisoformat("2026-11-26T13:00:00-03:00")


def item(code: str, second: int) -> ErpItem:
    return ErpItem(
        code=code,
        stock=Decimal(1),
        price=Decimal("1.00"),
        currency="ARS",
        active=True,
        modified=NOW - timedelta(hours=1) + timedelta(seconds=second),
    )


class FakeApi:
    """The contract's paging over a fixed list, recording what was asked."""

    def __init__(self, items: list[ErpItem]) -> None:
        self.items = sorted(items, key=lambda i: (i.modified, i.code))
        self.asked: list[tuple[Any, int, int]] = []

    def __call__(self, *, desde: datetime | None, pagina: int, por_pagina: int) -> StockPage:
        self.asked.append((desde, pagina, por_pagina))
        if desde is not None:
            desde = desde.replace(microsecond=0)  # as the wire sends it
        rows = [i for i in self.items if desde is None or (i.modified and i.modified >= desde)]
        start = (pagina - 1) * por_pagina
        return StockPage(
            pagina=pagina,
            por_pagina=por_pagina,
            total_items=len(rows),
            total_paginas=-(-len(rows) // por_pagina),
            hora_servidor=NOW,
            items=rows[start : start + por_pagina],
        )


def read_all(fetch: Any, page_size: int = 10) -> tuple[list[ErpItem], ChangeReader]:
    reader = ChangeReader(fetch, None, FeedStats(), page_size=page_size)
    return [i for batch in reader for i in batch], reader


@pytest.mark.parametrize("offset", [0, 3, 499, 500, 777, 1000, 1001, 4995, 123_457, 299_995])
def test_offset_pages_start_at_or_just_before_the_offset_with_large_pages(offset):
    pagina, size = page_for_offset(offset)
    start = (pagina - 1) * size
    assert start <= offset
    assert 500 <= size <= 1000
    assert offset - start <= (offset if offset < 500 else 10)


def test_reads_every_item_once_on_a_quiet_catalog_and_sets_the_watermark():
    api = FakeApi([item(f"A{i:02d}", i // 3) for i in range(47)])
    got, reader = read_all(api)
    assert sorted(i.code for i in got) == sorted(i.code for i in api.items)
    assert len(got) == 47  # nothing yielded twice
    assert reader.next_watermark == NOW - WATERMARK_LAG
    # R1: no second holds more than a page, so every request is the first page of
    # `desde=cursor`, the cursor moving to each page's last `modificado`.
    assert {pagina for _, pagina, _ in api.asked} == {1}


def test_a_group_larger_than_a_page_is_read_whole_without_duplicates():
    api = FakeApi([item(f"B{i:03d}", 5) for i in range(95)])
    got, _ = read_all(api)
    assert len(got) == len({i.code for i in got}) == 95


def test_a_page_larger_than_asked_stops_the_run():
    def fetch(**kw: Any) -> StockPage:
        return StockPage(1, kw["por_pagina"], 50, 1, NOW, [item(f"C{i}", i) for i in range(11)])

    with pytest.raises(ErpError) as e:
        read_all(fetch)
    assert e.value.code == "absurd_response"


def test_a_page_repeating_forever_stops_the_run():
    same = [item(f"D{i}", 1) for i in range(10)]

    def fetch(**kw: Any) -> StockPage:
        return StockPage(kw["pagina"], kw["por_pagina"], 10_000, 1000, NOW, list(same))

    with pytest.raises(ErpError) as e:
        read_all(fetch)
    assert e.value.code == "absurd_response"


def test_more_pages_than_announced_stops_the_run():
    counter = iter(range(10**6))

    def fetch(**kw: Any) -> StockPage:
        # Announces 20 items, then never ends: always a full page of new ones.
        base = next(counter) * 10
        return StockPage(
            1, kw["por_pagina"], 20, 2, NOW, [item(f"E{base + i:07d}", base + i) for i in range(10)]
        )

    with pytest.raises(ErpError) as e:
        read_all(fetch)
    assert e.value.code == "absurd_response"
    assert "páginas" in e.value.message


def test_items_out_of_order_stop_the_run():
    def fetch(**kw: Any) -> StockPage:
        return StockPage(1, kw["por_pagina"], 2, 1, NOW, [item("F2", 9), item("F1", 3)])

    with pytest.raises(ErpError) as e:
        read_all(fetch)
    assert e.value.code == "absurd_response"


def test_without_server_time_the_watermark_does_not_move():
    since = NOW - timedelta(days=1)

    def fetch(**kw: Any) -> StockPage:
        return StockPage(1, kw["por_pagina"], 1, 1, None, [item("G1", 1)])

    reader = ChangeReader(fetch, since, FeedStats(), page_size=10)
    list(reader)
    assert reader.next_watermark == since


def test_without_server_time_on_the_first_page_a_later_page_does_not_move_the_watermark():
    since = NOW - timedelta(days=1)
    api = FakeApi([item(f"H{i:02d}", i) for i in range(25)])

    def fetch(**kw: Any) -> StockPage:
        page = api(**kw)
        return dataclasses.replace(page, hora_servidor=None) if len(api.asked) == 1 else page

    reader = ChangeReader(fetch, since, FeedStats(), page_size=10)
    assert len([i for batch in reader for i in batch]) == 25
    assert len(api.asked) > 1  # later pages did carry a time
    # Changes made between the first page and a later one would be skipped if the
    # later page's time became the next run's starting point.
    assert reader.next_watermark == since


def clock_moved_back(api: FakeApi, since: datetime, jump: float) -> ChangeReader:
    """A reader whose instance clock is `jump` seconds further back than last run."""
    return ChangeReader(
        api,
        since,
        FeedStats(),
        page_size=10,
        previous_clock_offset=0.0,
        now=lambda: NOW + timedelta(seconds=jump),
    )


def test_clock_moved_back_by_a_fraction_of_a_second_reads_the_items_of_the_second_it_lands_in():
    since = NOW - timedelta(minutes=30)
    # The jump is 600.4 s: the reader starts at since - 601 s, a whole second.
    landing = since - timedelta(seconds=601)
    edits = [
        ErpItem("J1", Decimal(1), Decimal("1.00"), "ARS", True, landing),
        ErpItem("J2", Decimal(2), Decimal("1.00"), "ARS", True, landing),
        ErpItem("J3", Decimal(3), Decimal("1.00"), "ARS", True, since - timedelta(seconds=300)),
    ]
    api = FakeApi(edits)
    reader = clock_moved_back(api, since, 600.4)
    got = [i.code for batch in reader for i in batch]
    assert sorted(got) == ["J1", "J2", "J3"]
    assert api.asked[-1][0] == landing


def test_clock_moved_back_over_a_busy_span_budgets_the_pages_of_the_longer_span():
    since = NOW - timedelta(minutes=30)
    # Few items after the old watermark, hundreds in the minutes the clock went back.
    before = [
        ErpItem(f"K{i:03d}", Decimal(1), Decimal("1.00"), "ARS", True, since - timedelta(seconds=i))
        for i in range(1, 400)
    ]
    after = [item("L1", 3000)]
    api = FakeApi(before + after)
    reader = clock_moved_back(api, since, 600)
    got = [i.code for batch in reader for i in batch]
    assert len(got) == len(set(got)) == 400


def test_a_clock_that_moved_back_is_remembered_across_a_run_whose_first_page_had_no_time():
    since = NOW - timedelta(minutes=30)  # the last run's watermark; its offset was 0
    # Made after the instance's clock went back 600 s: stamped before the watermark.
    late = ErpItem("LATE", Decimal(1), Decimal("1.00"), "ARS", True, since - timedelta(seconds=300))
    api = FakeApi([late, *(item(f"N{i:02d}", 1800 + i) for i in range(25))])

    def first_page_without_time(**kw: Any) -> StockPage:
        page = api(**kw)
        return dataclasses.replace(page, hora_servidor=None) if len(api.asked) == 1 else page

    first = clock_moved_back(api, since, 600)
    first.fetch = first_page_without_time
    read = {i.code for batch in first for i in batch}
    # What the engine keeps for the next run: its watermark and the clock offset.
    assert first.clock_offset == 0.0
    second = ChangeReader(
        api,
        first.next_watermark,
        FeedStats(),
        page_size=10,
        previous_clock_offset=first.clock_offset,
        now=lambda: NOW + timedelta(seconds=600),
    )
    read |= {i.code for batch in second for i in batch}
    assert "LATE" in read


class MillisecondApi:
    """An instance that stamps `modificado` and `hora_servidor` with milliseconds,
    answering through the real wire parser (JSON bodies, `desde` as the wire sends
    it), with a bulk edit's items spread over one second's milliseconds."""

    def __init__(self, rows: dict[str, datetime]) -> None:
        self.rows = dict(rows)  # codigo -> modificado, to the millisecond
        self.now = NOW + timedelta(milliseconds=437)
        self.after_page: dict[int, list[str]] = {}
        self.served = 0

    def edit(self, codes: list[str]) -> None:
        self.now += timedelta(seconds=1, milliseconds=123)
        for step, code in enumerate(codes):
            self.rows[code] = self.now + timedelta(milliseconds=step)

    def __call__(self, *, desde: datetime | None, pagina: int, por_pagina: int) -> StockPage:
        params = wire.stock_params(desde=desde, pagina=pagina, por_pagina=por_pagina)
        since = datetime.fromisoformat(params["desde"]) if "desde" in params else None
        order = sorted(
            (moment, code) for code, moment in self.rows.items() if since is None or moment >= since
        )
        start = (pagina - 1) * por_pagina
        body = {
            "pagina": pagina,
            "por_pagina": por_pagina,
            "total_items": len(order),
            "total_paginas": -(-len(order) // por_pagina),
            "hora_servidor": self.now.isoformat(timespec="milliseconds"),
            "items": [
                {
                    "codigo": code,
                    "stock": "1.000",
                    "precio_mayorista": "1.00",
                    "modificado": moment.isoformat(timespec="milliseconds"),
                }
                for moment, code in order[start : start + por_pagina]
            ],
        }
        self.served += 1
        self.edit(self.after_page.pop(self.served, []))
        return wire.parse_stock_page(body)


def test_an_instance_stamping_milliseconds_is_read_whole_with_a_bulk_second_leaving_mid_read():
    bulk = NOW - timedelta(hours=1)
    rows = {f"M{i:02d}": bulk + timedelta(milliseconds=20 * i) for i in range(35)}
    rows |= {f"P{i:02d}": bulk + timedelta(seconds=1 + i, milliseconds=999) for i in range(12)}
    api = MillisecondApi(rows)
    # Three items read on page 1 are edited right after it (R2 with milliseconds).
    api.after_page[1] = ["M00", "M01", "M02"]
    reader = ChangeReader(api, bulk - timedelta(minutes=5), FeedStats(), page_size=10)
    got = {i.code for batch in reader for i in batch}
    assert got == set(api.rows)
    assert reader.next_watermark is not None
    assert reader.next_watermark.microsecond == 0
    # The watermark is the first page's time, floored, minus the lag.
    assert reader.next_watermark == NOW - WATERMARK_LAG


@pytest.mark.parametrize("servers_apart", [0, 80])
def test_a_change_that_commits_90_s_after_its_time_is_read_by_the_next_run(servers_apart):
    # The contract's worst case: a change stamped at second S - 90 (its real moment
    # a hair before S - 89, truncated to the second) commits just after the first
    # page said S. This run cannot see it; the next one, from the watermark, must.
    # With `servers_apart`, the page's time comes from an app server of the instance
    # whose clock is that many seconds ahead of the one that stamped the change:
    # the watermark's margin absorbs it.
    stamped = NOW - timedelta(seconds=90 + servers_apart)
    late = ErpItem("LATE", Decimal(1), Decimal("1.00"), "ARS", True, stamped)
    visible = [item(f"Q{i:02d}", 3570 + i) for i in range(25)]  # the last 30 s
    first = ChangeReader(FakeApi(visible), NOW - timedelta(minutes=10), FeedStats(), page_size=10)
    assert "LATE" not in {i.code for batch in first for i in batch}
    second = ChangeReader(
        FakeApi([*visible, late]), first.next_watermark, FeedStats(), page_size=10
    )
    assert "LATE" in {i.code for batch in second for i in batch}


def test_a_watermark_with_a_fraction_of_a_second_reads_the_items_of_its_second():
    # `modificado` has whole seconds: a cursor between two would make the items of
    # its own second look older than asked for, and stop the run as absurd.
    second = item("R0", 10).modified
    assert second is not None
    api = FakeApi([item(f"R{i}", 10) for i in range(3)] + [item("S0", 20)])
    reader = ChangeReader(api, second + timedelta(milliseconds=600), FeedStats(), page_size=10)
    assert sorted(i.code for batch in reader for i in batch) == ["R0", "R1", "R2", "S0"]
