"""One SKU rule and accent-insensitive search: the columns and the data (the indexes
that serve them are 0005: on PostgreSQL an index cannot be created on a table in
the transaction that updated its rows).

* Surrounding whitespace is never part of a SKU: existing SKUs are stripped, except
  those whose stripped SKU is already another SKU of the same store (or would be
  the same as another stripped one): those stay as they were and are printed
  here; `vxm catalog ambiguous SLUG` lists them afterwards.
* `sku_key` grows to 300 characters: casefold() can triple a SKU's length.
* `search_text` (the folded SKU and name) is filled for every item.

The folding functions are copied here, frozen, as a migration must not depend on
code that may change later; a change of catalog.models.search_fold needs a new
migration that refills the column.
"""

import re
import unicodedata
from collections import defaultdict

from django.db import migrations, models

CHUNK = 2000

_LATIN = re.compile("[\x00-\x7f\u0300-\u036f]*")


def _drop_marks(text):
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


def _fold(text):
    decomposed = unicodedata.normalize("NFKD", text)
    if _LATIN.fullmatch(decomposed):
        return decomposed.encode("ascii", "ignore").decode("ascii").lower()
    folded = _drop_marks(decomposed).casefold()
    return _drop_marks(unicodedata.normalize("NFKD", folded))


def _chunks(Item, fields):
    """Every item's `fields` (id first), by id, CHUNK at a time."""
    last = 0
    while True:
        rows = list(
            Item.objects.filter(pk__gt=last).order_by("pk").values_list("pk", *fields)[:CHUNK]
        )
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _update(connection, table, columns, rows):
    """rows of (id, *values of columns)."""
    if not rows:
        return
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            aliases = [f"c{k}" for k in range(len(columns))]
            sets = ", ".join(f"{q(c)} = v.{a}" for c, a in zip(columns, aliases))
            arrays = ", ".join(["%s::bigint[]"] + ["%s::text[]"] * len(columns))
            cursor.execute(
                f"UPDATE {q(table)} AS t SET {sets} FROM unnest({arrays}) "
                f"AS v(id, {', '.join(aliases)}) WHERE t.id = v.id",
                [list(column) for column in zip(*rows)],
            )
        else:
            sets = ", ".join(f"{q(c)} = %s" for c in columns)
            cursor.executemany(
                f"UPDATE {q(table)} SET {sets} WHERE id = %s",
                [(*values, pk) for pk, *values in rows],
            )


def strip_skus(apps, schema_editor):
    Item = apps.get_model("catalog", "Item")
    Store = apps.get_model("stores", "Store")
    connection = schema_editor.connection
    # (store, stripped SKU) -> the items that would take it.
    dirty = defaultdict(list)
    for rows in _chunks(Item, ["store_id", "sku"]):
        for pk, store_id, sku in rows:
            if sku != sku.strip():
                dirty[store_id, sku.strip()].append((pk, sku))
    if not dirty:
        return
    taken = set()
    by_store = defaultdict(list)
    for store_id, stripped in dirty:
        by_store[store_id].append(stripped)
    for store_id, stripped in by_store.items():
        for start in range(0, len(stripped), 500):
            taken.update(
                Item.objects.filter(store_id=store_id, sku__in=stripped[start : start + 500])
                .values_list("store_id", "sku")
            )
    clean, kept = [], []
    for (store_id, stripped), items in dirty.items():
        if stripped and len(items) == 1 and (store_id, stripped) not in taken:
            clean.append((items[0][0], stripped))
        else:
            kept.extend((store_id, pk, sku, stripped) for pk, sku in items)
    for start in range(0, len(clean), CHUNK):
        _update(connection, Item._meta.db_table, ["sku"], clean[start : start + CHUNK])
    if kept:
        slugs = dict(Store.objects.values_list("pk", "slug"))
        print(
            f"\n  catalog: se quitaron los espacios alrededor de {len(clean)} SKU; "
            f"{len(kept)} {'quedó' if len(kept) == 1 else 'quedaron'} como estaba"
            f"{'' if len(kept) == 1 else 'n'} porque sin espacios sería el SKU de otro "
            "producto de la misma tienda:"
        )
        for store_id, pk, sku, stripped in sorted(kept)[:200]:
            print(f"    tienda «{slugs.get(store_id)}», producto {pk}: «{sku}» (sería «{stripped}»)")
        if len(kept) > 200:
            print(f"    ... y {len(kept) - 200} más.")
        print("  Listalos con: vxm catalog ambiguous SLUG")


def fill_derived(apps, schema_editor):
    Item = apps.get_model("catalog", "Item")
    for rows in _chunks(Item, ["sku", "name"]):
        _update(
            schema_editor.connection,
            Item._meta.db_table,
            ["sku_key", "search_text"],
            [
                (pk, sku.strip().casefold(), f"{_fold(sku)}\n{_fold(name)}")
                for pk, sku, name in rows
            ],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_catalogimport"),
        ("stores", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="item",
            name="item_store_skukey",
        ),
        migrations.RemoveIndex(
            model_name="item",
            name="item_store_stock_sku",
        ),
        migrations.AddField(
            model_name="item",
            name="search_text",
            field=models.TextField(default="", editable=False),
        ),
        migrations.AlterField(
            model_name="item",
            name="sku_key",
            field=models.CharField(editable=False, max_length=300),
        ),
        migrations.RunPython(strip_skus, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(fill_derived, migrations.RunPython.noop, elidable=True),
    ]
