"""Bulk writes of items, stock, prices and history, in plain parameterised SQL.

Shared by everything that changes many items at once (CSV import, ERP updates).
Django's bulk_update builds a CASE WHEN per field with a branch per row, which
costs about a millisecond of Python per row and is quadratic on SQLite, and
bulk_create spends most of its time building model instances. Here a batch is
one INSERT and updates one UPDATE, each fed one array per column on
PostgreSQL (`unnest`: the statement stays short whatever the batch), a multi-row
INSERT and an executemany on SQLite (in-process, as fast).
Values go through the backend's own adapters, as the ORM's do.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Field, Model, Q
from django.db.models.expressions import RawSQL

from catalog.models import Item, ItemChange, clean_sku, search_text, sku_key
from stores.models import Store

# (item id, old stock, new stock, old price, new price); None = that field unchanged.
Change = tuple[int, int | None, int | None, Decimal | None, Decimal | None]

# Rows per statement: bounded so that one statement's SQL text stays a few hundred KB.
_BATCH_ROWS = 5000


def item_in(field: str, values: list[str]) -> Q | RawSQL:
    """A filter of items whose `field` (sku or sku_key) is one of `values`.

    On PostgreSQL one array parameter (`= ANY`): an IN list of a thousand
    placeholders costs more to build and parse than the indexed lookup itself.
    """
    if connection.vendor == "postgresql":
        column = (
            f"{connection.ops.quote_name(Item._meta.db_table)}.{connection.ops.quote_name(field)}"
        )
        return RawSQL(f"{column} = ANY(%s::text[])", (values,), output_field=BooleanField())
    return Q(**{f"{field}__in": values})


def _pg_array_type(model: type[Model], name: str) -> str:
    """The PostgreSQL array type that carries values of the field `name` of `model`.

    The base type, without its modifiers: a cast to varchar(300) would silently cut
    a value that assigning to the column itself refuses with an error.
    """
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    base = str(field.db_type(connection)).split("(")[0].strip()
    return f"{'text' if base == 'varchar' else base}[]"


class CatalogWriter:
    """Writes one store's items and their history, all stamped with `at`.

    `source`, `actor`, `user_id` and `run_id` go into every history row. Call it
    inside a transaction: a batch is several statements.
    """

    def __init__(
        self,
        store_id: int,
        *,
        at: datetime,
        source: str,
        actor: str,
        user_id: int | None = None,
        run_id: int | None = None,
    ) -> None:
        ops = connection.ops
        self.store_id = store_id
        self.source, self.actor, self.user_id, self.run_id = source, actor, user_id, run_id
        self._q = ops.quote_name
        self._price = ops.adapt_decimalfield_value
        self.at = ops.adapt_datetimefield_value(at)

    def column(self, model: type[Model], name: str) -> str:
        field = model._meta.get_field(name)
        assert isinstance(field, Field) and field.column
        return self._q(field.column)

    def lock_store(self) -> None:
        """Take the store's bulk-write lock until the transaction ends.

        Bulk writers (a CSV import, an ERP update's batch) of one store then run one
        after the other, so two of them cannot deadlock on each other's rows; single
        edits lock only their item. FOR NO KEY UPDATE: inserting rows that refer to
        the store (items, audit events) elsewhere is not blocked. SQLite needs
        nothing: an IMMEDIATE transaction already holds the database's write lock.
        """
        list(
            Store.objects.select_for_update(no_key=True)
            .filter(pk=self.store_id)
            .values_list("pk", flat=True)
        )

    def price(self, value: Decimal | None) -> Any:
        return None if value is None else self._price(value, 14, 2)

    def _rows_per_statement(self, params_per_row: int, extra_params: int = 0) -> int:
        # SQLite caps the parameters of one statement (32,766 nowadays).
        limit = connection.features.max_query_params or 65_535
        return max(1, min((limit - extra_params) // params_per_row, _BATCH_ROWS))

    def insert(self, model: type[Model], names: list[str], rows: list[tuple[Any, ...]]) -> None:
        """Rows of values (already adapted) for the fields `names` of `model`."""
        if not rows:
            return
        table = self._q(model._meta.db_table)
        columns = ", ".join(self.column(model, n) for n in names)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # One array per column: a short statement whatever the batch, so
                # the driver does not parse thousands of placeholders.
                arrays = ", ".join(f"%s::{_pg_array_type(model, n)}" for n in names)
                for start in range(0, len(rows), _BATCH_ROWS):
                    batch = rows[start : start + _BATCH_ROWS]
                    cursor.execute(
                        f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})",
                        [list(column) for column in zip(*batch, strict=True)],
                    )
                return
            row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
            per_statement = self._rows_per_statement(len(names))
            for start in range(0, len(rows), per_statement):
                batch = rows[start : start + per_statement]
                values = ", ".join([row_sql] * len(batch))
                params = [value for row in batch for value in row]
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", params)

    def create_items(self, rows: list[tuple[str, str, int, Decimal]]) -> dict[str, int]:
        """Rows of (sku, name, stock, price) become new items of this store, created
        and updated at `at`; returns their ids by SKU as stored (without surrounding
        whitespace, catalog.models.clean_sku)."""
        if not rows:
            return {}
        names = ["store", "sku", "sku_key", "search_text", "name", "stock", "wholesale_price"]
        store_id, at = self.store_id, self.at
        clean = [(clean_sku(sku), name, stock, price) for sku, name, stock, price in rows]
        self.insert(
            Item,
            [*names, "created_at", "updated_at"],
            [
                (
                    store_id,
                    sku,
                    sku_key(sku),
                    search_text(sku, name),
                    name,
                    stock,
                    self.price(price),
                    at,
                    at,
                )
                for sku, name, stock, price in clean
            ],
        )
        # Indexed queries by (store, sku) give the new ids (RETURNING is not on every
        # backend). order_by(): Item's default ordering is of no use here.
        skus = [sku for sku, _, _, _ in clean]
        ids: dict[str, int] = {}
        per_query = self._rows_per_statement(1, extra_params=1)
        for start in range(0, len(skus), per_query):
            created = Item.objects.filter(
                item_in("sku", skus[start : start + per_query]), store_id=store_id
            )
            ids.update(created.order_by().values_list("sku", "id"))
        return ids

    def update_items(self, rows: list[tuple[int, str, str, int, Decimal]]) -> None:
        """Rows of (item id, its SKU as stored, name, stock, price) of this store; the
        SKU is not changed, it only goes into the search text with the name.
        updated_at becomes `at`."""
        self._update(
            ["name", "search_text", "stock", "wholesale_price"],
            [
                (pk, name, search_text(sku, name), stock, self.price(price))
                for pk, sku, name, stock, price in rows
            ],
        )

    def set_stock_and_price(self, rows: list[tuple[int, int, Decimal]]) -> None:
        """Rows of (item id, stock, price) of this store; updated_at becomes `at`."""
        self._update(
            ["stock", "wholesale_price"],
            [(pk, stock, self.price(price)) for pk, stock, price in rows],
        )

    def _update(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        """Rows of (item id, *values of `names`, adapted); items of other stores are
        left alone. updated_at becomes `at`."""
        if not rows:
            return
        table = self._q(Item._meta.db_table)
        pk, store, updated_at = (self.column(Item, n) for n in ("id", "store", "updated_at"))
        columns = [self.column(Item, n) for n in names]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                aliases = [f"c{k}" for k in range(len(names))]
                arrays = ", ".join(
                    ["%s::bigint[]", *(f"%s::{_pg_array_type(Item, n)}" for n in names)]
                )
                sets = ", ".join(f"{c} = v.{a}" for c, a in zip(columns, aliases, strict=True))
                for start in range(0, len(rows), _BATCH_ROWS):
                    batch = rows[start : start + _BATCH_ROWS]
                    cursor.execute(
                        f"UPDATE {table} AS t SET {sets}, {updated_at} = %s "
                        f"FROM unnest({arrays}) AS v(id, {', '.join(aliases)}) "
                        f"WHERE t.{pk} = v.id AND t.{store} = %s",
                        [
                            self.at,
                            *(list(column) for column in zip(*batch, strict=True)),
                            self.store_id,
                        ],
                    )
            else:
                sets = ", ".join(f"{c} = %s" for c in columns)
                cursor.executemany(
                    f"UPDATE {table} SET {sets}, {updated_at} = %s "
                    f"WHERE {pk} = %s AND {store} = %s",
                    [(*values, self.at, item_id, self.store_id) for item_id, *values in rows],
                )

    def add_history(self, changes: list[Change]) -> None:
        names = ["store", "item", "at", "source", "actor", "user", "run"]
        names += ["old_stock", "new_stock", "old_price", "new_price"]
        fixed = (self.at, self.source, self.actor, self.user_id, self.run_id)
        self.insert(
            ItemChange,
            names,
            [
                (self.store_id, item_id, *fixed, old, new, self.price(old_p), self.price(new_p))
                for item_id, old, new, old_p, new_p in changes
            ],
        )
