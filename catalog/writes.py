"""Bulk writes of stock, prices and history, in plain parameterised SQL.

Shared by everything that changes many items at once (CSV import, ERP updates).
Django's bulk_update builds a CASE WHEN per field with a branch per row, which
costs about a millisecond of Python per row and is quadratic on SQLite, and
bulk_create spends most of its time building model instances. Here a batch is
one multi-row INSERT, and updates one UPDATE joined to a VALUES list on
PostgreSQL (an executemany on SQLite, which runs in-process and is as fast).
Values go through the backend's own adapters, as the ORM's do.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from catalog.models import Item, ItemChange

# (item id, old stock, new stock, old price, new price); None = that field unchanged.
Change = tuple[int, int | None, int | None, Decimal | None, Decimal | None]


class CatalogWriter:
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

    def price(self, value: Decimal | None) -> Any:
        return None if value is None else self._price(value, 14, 2)

    def insert(self, model: type[Model], names: list[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        table = self._q(model._meta.db_table)
        columns = ", ".join(self.column(model, n) for n in names)
        row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
        # SQLite caps the parameters of one statement (32,766 nowadays).
        limit = connection.features.max_query_params or 65_535
        per_statement = max(1, min(limit // len(names), 5000))
        with connection.cursor() as cursor:
            for start in range(0, len(rows), per_statement):
                batch = rows[start : start + per_statement]
                values = ", ".join([row_sql] * len(batch))
                params = [value for row in batch for value in row]
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", params)

    def set_stock_and_price(self, rows: list[tuple[int, int, Decimal]]) -> None:
        """Rows of (item id, stock, price) of this store; updated_at becomes `at`."""
        if not rows:
            return
        table = self._q(Item._meta.db_table)
        pk, store = self.column(Item, "id"), self.column(Item, "store")
        stock, price, updated_at = (
            self.column(Item, n) for n in ("stock", "wholesale_price", "updated_at")
        )
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                row_sql = "(%s::bigint, %s::bigint, %s::numeric)"
                for start in range(0, len(rows), 5000):
                    batch = rows[start : start + 5000]
                    cursor.execute(
                        f"UPDATE {table} AS t SET {stock} = v.stock, {price} = v.price, "
                        f"{updated_at} = %s "
                        f"FROM (VALUES {', '.join([row_sql] * len(batch))}) "
                        f"AS v(id, stock, price) WHERE t.{pk} = v.id AND t.{store} = %s",
                        [self.at]
                        + [v for i, s, p in batch for v in (i, s, self.price(p))]
                        + [self.store_id],
                    )
            else:
                cursor.executemany(
                    f"UPDATE {table} SET {stock} = %s, {price} = %s, {updated_at} = %s "
                    f"WHERE {pk} = %s AND {store} = %s",
                    [(s, self.price(p), self.at, i, self.store_id) for i, s, p in rows],
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
