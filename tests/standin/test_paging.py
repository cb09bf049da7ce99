"""Order and paging over live data, bulk edits, late commits, edits between pages."""

import random
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from nonsistemas_standin import Standin

from .conftest import Api

BASE = datetime.fromisoformat("2026-11-20T10:00:00-03:00")


def catalog(codes: str, *, step: int = 60) -> list[dict[str, Any]]:
    """One item per letter, each modified `step` seconds after the previous one."""
    return [
        {
            "codigo": code,
            "stock": "5",
            "precio_mayorista": "100",
            "modificado": BASE + timedelta(seconds=i * step),
        }
        for i, code in enumerate(codes)
    ]


@pytest.fixture(autouse=True)
def _unlimited(standin: Standin) -> None:
    # These tests page a lot; the request limit has tests of its own.
    standin.configure(request_limit_per_second=None)


def test_order_is_modificado_then_codigo(standin: Standin, api: Api) -> None:
    same = BASE.isoformat()
    later = (BASE + timedelta(seconds=1)).isoformat()
    items = [
        {"codigo": code, "stock": "1", "precio_mayorista": "1", "modificado": moment}
        for code, moment in [("B", same), ("a", same), ("A", same), ("0", later), ("C", same)]
    ]
    random.Random(3).shuffle(items)
    standin.load(items)
    assert api.codes() == ["A", "B", "C", "a", "0"]
    assert [i["codigo"] for i in standin.items()] == ["A", "B", "C", "a", "0"]


def test_paging_walks_the_whole_order(standin: Standin, api: Api) -> None:
    standin.generate(2345, seed=7)
    pages = [api.page(pagina=n, por_pagina=1000) for n in (1, 2, 3)]
    walked = [i for page in pages for i in page["items"]]
    assert walked == standin.items()
    keys = [(i["modificado"], i["codigo"]) for i in walked]
    assert keys == sorted(keys)  # same offset everywhere, so the text sorts by time
    assert [p["total_paginas"] for p in pages] == [3, 3, 3]


def test_an_edit_between_pages_makes_naive_paging_skip_an_item(standin: Standin, api: Api) -> None:
    standin.load(catalog("ABCDEF"))
    first = api.codes(pagina=1, por_pagina=2)
    assert first == ["A", "B"]

    standin.edit([{"codigo": "A", "stock": "4"}])

    page2 = api.page(pagina=2, por_pagina=2)
    page3 = api.page(pagina=3, por_pagina=2)
    # A moved to the end; B..F shifted one place towards the front, so C now sits on
    # page 1 and a client that goes on with page 2 never sees it.
    assert [i["codigo"] for i in page2["items"]] == ["D", "E"]
    assert [i["codigo"] for i in page3["items"]] == ["F", "A"]
    assert page2["total_items"] == 6
    seen = first + [i["codigo"] for i in page2["items"] + page3["items"]]
    assert "C" not in seen
    assert page3["items"][-1]["stock"] == "4.000"
    assert page3["items"][-1]["modificado"] > page3["items"][0]["modificado"]


def test_after_page_applies_between_page_n_and_n_plus_1(standin: Standin, api: Api) -> None:
    standin.load(catalog("ABCDEF"))
    standin.edit([{"codigo": "B", "stock": "0"}], after_page=2)

    assert api.codes(pagina=1, por_pagina=2) == ["A", "B"]
    assert [i["stock"] for i in standin.items()] == ["5.000"] * 6  # not yet
    assert api.codes(pagina=2, por_pagina=2) == ["C", "D"]
    # Applied right after page 2 was served: B moved to the end, E shifted onto page 2.
    assert api.codes(pagina=3, por_pagina=2) == ["F", "B"]
    assert standin.items()[-1] | {"modificado": None} == {
        "codigo": "B",
        "descripcion": "",
        "stock": "0.000",
        "precio_mayorista": "100.00",
        "moneda": "ARS",
        "activo": True,
        "modificado": None,
    }


def test_after_page_counts_pages_of_every_client_but_only_intact_ones(
    standin: Standin, api: Api, http: httpx.Client
) -> None:
    standin.load(catalog("ABCD"))
    standin.edit([{"codigo": "A", "stock": "9"}], after_page=2)
    other = Api(http)

    assert api.stock(pagina=0).status_code == 400  # not a page
    assert http.get("/api/stock").status_code == 401  # not a page
    assert api.codes(pagina=1, por_pagina=2) == ["A", "B"]  # page 1 of the counter
    assert standin.items()[0]["codigo"] == "A"
    assert other.codes(pagina=9) == []  # another client's page: 2 of the counter
    last = standin.items()[-1]
    assert (last["codigo"], last["stock"]) == ("A", "9.000")


def test_after_page_counts_from_the_edit_call(standin: Standin, api: Api) -> None:
    standin.load(catalog("ABCD"))
    api.page()
    api.page()
    standin.edit([{"codigo": "A", "stock": "9"}], after_page=1)
    assert standin.items()[0]["codigo"] == "A"
    api.page()
    assert standin.items()[-1]["codigo"] == "A"


def test_bulk_edit_shares_one_modificado(standin: Standin, api: Api) -> None:
    standin.load(catalog("ABCDEFGH"))
    standin.edit(
        [
            {"codigo": "G", "precio_mayorista": "108"},
            {"codigo": "B", "precio_mayorista": "108"},
            {"codigo": "E", "precio_mayorista": "108", "activo": False},
        ]
    )
    items = api.page()["items"]
    assert [i["codigo"] for i in items] == ["A", "C", "D", "F", "H", "B", "E", "G"]
    edited = items[-3:]
    assert len({i["modificado"] for i in edited}) == 1
    assert {i["precio_mayorista"] for i in edited} == {"108.00"}
    assert [i["activo"] for i in edited] == [True, False, True]
    now = standin.now()
    edited_at = datetime.fromisoformat(edited[0]["modificado"])
    assert timedelta(0) <= now - edited_at < timedelta(seconds=5)


def test_large_bulk_edit_keeps_the_order(standin: Standin, api: Api) -> None:
    standin.generate(3000, seed=5)
    before = standin.items()
    chosen = [i["codigo"] for i in before[::7]]  # 429 items: the rebuild path
    standin.edit([{"codigo": code, "stock": "1"} for code in chosen])
    after = standin.items()
    assert len(after) == 3000
    assert [i["codigo"] for i in after[-len(chosen) :]] == sorted(chosen)
    keys = [(datetime.fromisoformat(i["modificado"]), i["codigo"]) for i in after]
    assert keys == sorted(keys)
    pages = [api.page(pagina=n, por_pagina=1000)["items"] for n in (1, 2, 3)]
    assert [i for page in pages for i in page] == after


def test_edit_creates_unknown_items(standin: Standin, api: Api) -> None:
    standin.load(catalog("AB"))
    standin.edit([{"codigo": "NEW-1", "stock": "3", "precio_mayorista": "7.5", "moneda": "USD"}])
    new = api.page()["items"][-1]
    assert (new["codigo"], new["stock"], new["precio_mayorista"], new["moneda"]) == (
        "NEW-1",
        "3.000",
        "7.50",
        "USD",
    )
    with pytest.raises(ValueError, match="stock"):
        standin.edit([{"codigo": "NEW-2", "precio_mayorista": "1"}])


@pytest.mark.parametrize(
    "change",
    [
        {"stock": "1"},  # no codigo
        {"codigo": "A", "modificado": "2026-01-01T00:00:00Z"},
        {"codigo": "A", "stock": "mucho"},
        {"codigo": "A", "activo": "no"},
        {"codigo": "A", "stock": True},
    ],
)
def test_bad_edits_are_refused_when_made(standin: Standin, change: dict[str, Any]) -> None:
    standin.load(catalog("A"))
    with pytest.raises(ValueError):
        standin.edit([change], after_page=1)


def test_late_commit_is_invisible_until_its_moment(standin: Standin, api: Api) -> None:
    standin.load(catalog("ABC"))
    standin.edit([{"codigo": "A", "stock": "0"}], visible_after=90)
    edit_moment = standin.now().replace(microsecond=0)

    # Not committed yet: the old version is served, everywhere.
    assert api.page()["items"][0] == standin.items()[0]
    assert standin.items()[0]["stock"] == "5.000"
    standin.advance(30)
    checkpoint = api.page()["hora_servidor"]
    assert "A" not in api.codes(desde=checkpoint)

    standin.advance(60)
    # Visible now, with the modificado of the edit: before the checkpoint, so an
    # incremental sync from `checkpoint` misses it; one that overlaps 90 s gets it.
    last = api.page()["items"][-1]
    assert (last["codigo"], last["stock"]) == ("A", "0.000")
    assert datetime.fromisoformat(last["modificado"]) - edit_moment < timedelta(seconds=1)
    assert "A" not in api.codes(desde=checkpoint)
    overlap = datetime.fromisoformat(checkpoint) - timedelta(seconds=90)
    assert "A" in api.codes(desde=overlap.isoformat())


def test_late_commits_become_visible_in_commit_order(standin: Standin) -> None:
    standin.load(catalog("AB"))
    standin.edit([{"codigo": "A", "stock": "1"}], visible_after=50)
    standin.advance(10)
    standin.edit([{"codigo": "A", "stock": "2"}, {"codigo": "B", "stock": "2"}], visible_after=20)
    standin.advance(25)  # the second commit is visible, the first is not
    assert [(i["codigo"], i["stock"]) for i in standin.items()] == [("A", "2.000"), ("B", "2.000")]
    standin.advance(20)  # now the first one commits too, and wins for A
    assert [(i["codigo"], i["stock"]) for i in standin.items()] == [("A", "1.000"), ("B", "2.000")]


def test_after_page_with_late_visibility(standin: Standin, api: Api) -> None:
    standin.load(catalog("ABCD"))
    standin.edit([{"codigo": "A", "stock": "0"}], after_page=1, visible_after=60)
    api.page(por_pagina=2)
    assert standin.items()[0]["stock"] == "5.000"
    standin.advance(60)
    assert standin.items()[-1]["stock"] == "0.000"


def test_load_and_generate_replace_pending_edits(standin: Standin, api: Api) -> None:
    standin.load(catalog("AB"))
    standin.edit([{"codigo": "A", "stock": "0"}], visible_after=10)
    standin.edit([{"codigo": "B", "stock": "0"}], after_page=1)
    standin.load(catalog("AB"))
    standin.advance(10)
    api.page()
    assert [i["stock"] for i in standin.items()] == ["5.000", "5.000"]


def test_load_refuses_duplicates_and_bad_items(standin: Standin) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        standin.load(catalog("AA"))
    with pytest.raises(ValueError):
        standin.load([{"codigo": "A"}])
    with pytest.raises(ValueError):
        standin.load([{"codigo": "A", "stock": "1", "color": "rojo"}])
