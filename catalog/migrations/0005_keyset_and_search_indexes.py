"""The indexes of the catalog list's order and of search.

* (store, sku_key) and (store, stock, sku) become (store, sku_key, id) and
  (store, stock, sku_key, id): the list's order and keyset, with or without the
  stock filter.
* `item_search` (catalog.models.SearchIndex) serves LIKE '%word%' on search_text:
  on PostgreSQL a trigram GIN index, which needs the pg_trgm extension. It is
  trusted since PostgreSQL 13, so the database's owner (or any role with CREATE on
  the database) can create it; IF NOT EXISTS makes one installed beforehand by a
  superuser enough. Left in place when migrating back: other objects may use it.
"""

from django.db import migrations, models

import catalog.models


def create_pg_trgm(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_sku_rule_search_text"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="item",
            index=models.Index(fields=["store", "sku_key", "id"], name="item_store_skukey_id"),
        ),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                fields=["store", "stock", "sku_key", "id"], name="item_store_stock_key"
            ),
        ),
        migrations.RunPython(create_pg_trgm, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="item",
            index=catalog.models.SearchIndex(
                fields=["store", "sku_key", "id", "search_text"], name="item_search"
            ),
        ),
    ]
