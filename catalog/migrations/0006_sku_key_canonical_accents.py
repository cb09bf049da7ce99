"""`sku_key` in Unicode's canonical caseless form: "é" typed as one character and
as "e" + a combining accent (files saved on a Mac, some ERPs) are one key.

Only keys with a non-ASCII character can change. The function is copied here,
frozen, as a migration must not depend on code that may change later.
"""

import unicodedata

from django.db import migrations

CHUNK = 2000


def _key(sku):
    key = sku.strip().casefold()
    if key.isascii():
        return key
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", key).casefold())


def recompute_keys(apps, schema_editor):
    Item = apps.get_model("catalog", "Item")
    last = 0
    while True:
        rows = list(
            Item.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "sku", "sku_key")[:CHUNK]
        )
        if not rows:
            return
        last = rows[-1][0]
        changed = [
            Item(pk=pk, sku_key=_key(sku)) for pk, sku, key in rows if _key(sku) != key
        ]
        if changed:
            Item.objects.bulk_update(changed, ["sku_key"])


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_keyset_and_search_indexes")]

    operations = [migrations.RunPython(recompute_keys, migrations.RunPython.noop, elidable=True)]
