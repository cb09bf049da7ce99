"""The store's catalog: sellable items by SKU, and the history of their stock and price."""

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from stores.models import Store

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    from erp.models import Run

LOW_STOCK_THRESHOLD = 5


def clean_sku(sku: str) -> str:
    """A SKU as it is stored: surrounding whitespace is never part of a SKU.

    Every way an item is created (CSV, the bulk writer, `Item.save`, bulk_create, the
    demo) goes through this, so " ACE-0013 " and "ACE-0013" are one SKU.
    """
    return sku.strip()


def sku_key(sku: str) -> str:
    """The form under which SKUs and ERP codes are matched.

    Surrounding whitespace is dropped and letter case ignored, so "ace-0001" and
    "ACE-0001" (or an ERP code " ACE-0001 ") are the same item. Two store SKUs with
    the same key are ambiguous: the ERP updates neither, a CSV row must spell one
    exactly. casefold() can triple a character's length ("ﬄ" -> "ffl", "ß" -> "ss"),
    hence a column three times the SKU's length.

    Accented letters have two spellings in Unicode: "é" as one character, or "e"
    followed by a combining accent (as files saved on a Mac and some ERPs write
    it). They look the same to everyone, so they are one key: the key is in the
    composed form (NFC) of the case-folded decomposition, Unicode's canonical
    caseless match. ASCII, nearly every SKU, skips that work.
    """
    key = sku.strip().casefold()
    if key.isascii():
        return key
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", key).casefold())


class _DropMarks(dict[int, int | None]):
    """A str.translate table that drops nonspacing marks (the accents NFKD splits
    off) and keeps everything else. Filled as characters are met, so translate runs
    at C speed on a 300,000-row import without a table of all Unicode built up front."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.category(chr(code)) == "Mn" else code
        self[code] = value
        return value


_MARKS = _DropMarks()


# Text that NFKD leaves as ASCII plus the accents of Latin letters (U+0300-U+036F,
# all nonspacing marks): nearly every SKU and Spanish name.
_LATIN = re.compile("[\x00-\x7f\u0300-\u036f]*")


def search_fold(text: str) -> str:
    """Text as search compares it, letter case and accents ignored:
    "Azúcar", "AZUCAR" and "azucar" all become "azucar" (and "Ñandú" "nandu").

    NFKD splits accented letters into letter + mark and compatibility forms into
    plain ones ("ﬁ" -> "fi", "²" -> "2"); the marks are dropped; casefold ignores
    case, and is followed by a second pass because it can itself yield a mark
    ("İ" -> "i̇").
    """
    decomposed = unicodedata.normalize("NFKD", text)
    if _LATIN.fullmatch(decomposed):
        # Dropping every non-ASCII character drops exactly the accents here; three
        # times faster than the general path, which a 300,000-row import notices.
        return decomposed.encode("ascii", "ignore").decode("ascii").lower()
    folded = decomposed.translate(_MARKS).casefold()
    return unicodedata.normalize("NFKD", folded).translate(_MARKS)


def search_text(sku: str, name: str) -> str:
    """What a search looks in: the folded SKU and name, a line apart. Search words
    never contain whitespace, so a word matches inside one of them, never across."""
    return f"{search_fold(sku)}\n{search_fold(name)}"


# Kept in step with `sku` and `name` by Item.save(), bulk_create/bulk_update and
# catalog.writes.CatalogWriter.
DERIVED_FIELDS = ("sku_key", "search_text")


class ItemQuerySet(models.QuerySet["Item"]):
    """Bulk writes keep an item's SKU clean and its derived fields in step, like save()."""

    def bulk_create(  # type: ignore[override]
        self, objs: Iterable["Item"], *args: Any, **kwargs: Any
    ) -> list["Item"]:
        items = list(objs)
        for item in items:
            item.derive()
        # (django-stubs' covariant _Model does not bind through super().)
        return list(super().bulk_create(items, *args, **kwargs))  # type: ignore[arg-type]

    def bulk_update(  # type: ignore[override]
        self, objs: Iterable["Item"], fields: Iterable[str], *args: Any, **kwargs: Any
    ) -> int:
        items, names = list(objs), list(fields)
        if {"sku", "name"} & set(names):
            for item in items:
                item.derive()
            names += [f for f in DERIVED_FIELDS if f not in names]
        return super().bulk_update(items, names, *args, **kwargs)  # type: ignore[arg-type]


class SearchIndex(models.Index):
    """The index that keeps search (`search_text LIKE '%word%'`) fast, shaped per
    database; declared on the model so that Django keeps it through later
    migrations (SQLite rebuilds a table for many changes, and recreates only the
    indexes it knows).

    * PostgreSQL: a trigram GIN index on search_text alone (pg_trgm, created by
      migration 0004): it finds the rows containing the word.
    * SQLite has no such index; it is declared as a b-tree on (store, sku_key, id,
      search_text), the list's order with the text in it: a search walks it and
      checks LIKE in the index entries themselves, never visiting a row that does
      not match (ten times faster than the table lookups of (store, sku_key, id) for
      a word that few items have).
    """

    def create_sql(self, model: Any, schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        if schema_editor.connection.vendor == "postgresql":
            return schema_editor._create_index_sql(
                model,
                fields=[model._meta.get_field("search_text")],
                name=self.name,
                using=" USING gin",
                opclasses=["gin_trgm_ops"],
                **kwargs,
            )
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class Item(models.Model):
    """A sellable item: a product, or one variant of it that has its own SKU."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(_("SKU"), max_length=100)
    # Derived from `sku` (and `name`), never edited: see DERIVED_FIELDS. sku_key is
    # what ERP codes and CSV rows are matched by and what the list is sorted by.
    sku_key = models.CharField(max_length=300, editable=False)
    # search_text(sku, name): searched with LIKE '%word%' (SearchIndex).
    search_text = models.TextField(editable=False, default="")
    name = models.CharField(_("nombre"), max_length=300)
    stock = models.BigIntegerField(_("stock"), default=0)
    wholesale_price = models.DecimalField(_("precio mayorista"), max_digits=14, decimal_places=2)
    # Locked against the ERP: updates leave its stock and price alone (and list it
    # in their report). Only the ERP: CSV imports and manual edits still change it.
    # Read by each update page inside its transaction, with the rows it locks.
    # db_default: the bulk writers (catalog.writes) insert items in raw SQL.
    erp_locked = models.BooleanField(_("bloqueado frente al ERP"), default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.UniqueConstraint(fields=["store", "sku"], name="unique_store_sku"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="item_stock_not_negative"),
            models.CheckConstraint(
                condition=Q(wholesale_price__gte=0), name="item_price_not_negative"
            ),
        ]
        indexes = [
            # Matching by key, and the list's keyset paging in (sku_key, id) order.
            models.Index(fields=["store", "sku_key", "id"], name="item_store_skukey_id"),
            # The list filtered by stock ("sin stock", "stock bajo"), same order.
            models.Index(fields=["store", "stock", "sku_key", "id"], name="item_store_stock_key"),
            SearchIndex(fields=["store", "sku_key", "id", "search_text"], name="item_search"),
            # The list filtered to locked items, same order. Partial: few items are
            # locked, and the index costs nothing for the others.
            models.Index(
                fields=["store", "sku_key", "id"],
                condition=Q(erp_locked=True),
                name="item_locked_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.derive()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"sku", "name"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, *DERIVED_FIELDS}
        super().save(*args, **kwargs)

    def derive(self) -> None:
        """Clean the SKU and recompute the fields derived from it and the name."""
        self.sku = clean_sku(self.sku)
        self.sku_key = sku_key(self.sku)
        self.search_text = search_text(self.sku, self.name)


def ambiguous_keys(store: Store) -> "models.QuerySet[Item, str]":
    """The SKU keys more than one of the store's items has (a subquery)."""
    return (
        Item.objects.filter(store=store)
        .order_by()
        .values("sku_key")
        .annotate(n=models.Count("id"))
        .filter(n__gt=1)
        .values_list("sku_key", flat=True)
    )


def ambiguous_groups(store: Store) -> list[list[Item]]:
    """The store's items that share their sku_key with another, grouped, by key.

    The ERP updates none of a group (it cannot tell them apart); among them are SKUs
    with surrounding spaces that migration 0004 could not strip because the
    stripped SKU was taken.
    """
    items = Item.objects.filter(store=store)
    keys = ambiguous_keys(store)
    groups: dict[str, list[Item]] = {}
    for item in (
        items.filter(sku_key__in=keys).order_by("sku_key", "sku").only("sku", "sku_key", "name")
    ):
        groups.setdefault(item.sku_key, []).append(item)
    return list(groups.values())


class ChangeSource(models.TextChoices):
    MANUAL = "manual", _("Edición manual")
    CSV = "csv", _("Importación CSV")
    ERP = "erp", _("NonSistemas")
    # A lock or unlock against the ERP: a history row with no stock or price, saying
    # who and when (item page, `vxm catalog lock`).
    LOCK = "lock", _("Bloqueo frente a NonSistemas")
    UNLOCK = "unlock", _("Desbloqueo")
    # An undo of an ERP update (issue #11): puts back what that run set.
    UNDO = "undo", _("Deshacer actualización")


class ItemChange(models.Model):
    """One change of an item's stock and/or price: the item's history.

    A field that did not change in this event has both its old and new value NULL.
    """

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    # No index of its own for `item` nor `run`: the indexes below start with them,
    # and every index more is written with each of ten million rows.
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="changes", db_index=False)
    # Indexed for retention: the newest row older than the horizon (vxm/retention.py).
    at = models.DateTimeField(_("cuándo"), db_index=True)
    source = models.CharField(_("origen"), max_length=16, choices=ChangeSource.choices)
    # Who made it: a user for manual edits and imports from the panel, an ERP run for
    # updates; `actor` keeps a readable name even if the user is deleted.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        "erp.Run",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="changes",
        db_index=False,
    )
    actor = models.CharField(_("quién"), max_length=200, blank=True)
    old_stock = models.BigIntegerField(null=True, blank=True)
    new_stock = models.BigIntegerField(null=True, blank=True)
    old_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    new_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The item page's history, newest first, keyset-paged on (at, id)
            # (catalog/history.py): each page is a walk of this index.
            models.Index(fields=["item", "-at", "-id"], name="itemchange_item_at_id"),
            # A run's list of changes is paged by id.
            models.Index(fields=["run", "id"], name="itemchange_run_id"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} {self.source} {self.at:%Y-%m-%d %H:%M}"

    @property
    def stock_changed(self) -> bool:
        return self.new_stock is not None and self.new_stock != self.old_stock

    @property
    def price_changed(self) -> bool:
        return self.new_price is not None and self.new_price != self.old_price


def change_for(
    item: Item,
    *,
    new_stock: int | None,
    new_price: Decimal | None,
    source: str,
    at: datetime,
    actor: str,
    user: "AbstractBaseUser | AnonymousUser | None" = None,
    run: "Run | None" = None,
) -> ItemChange | None:
    """Apply a stock/price change to `item` in memory and return its history row.

    Returns None when nothing changes, so callers write neither the item nor a
    history entry: running the same update twice changes nothing the second time.
    The caller saves both (in bulk, in one transaction). `user` is whoever made the
    change, if anyone (an anonymous user counts as no one).
    """
    stock_changes = new_stock is not None and new_stock != item.stock
    price_changes = new_price is not None and new_price != item.wholesale_price
    if not (stock_changes or price_changes):
        return None
    change = ItemChange(
        store_id=item.store_id,
        item=item,
        at=at,
        source=source,
        actor=actor,
        user_id=None if user is None else user.pk,
        run=run,
    )
    if stock_changes and new_stock is not None:
        change.old_stock, change.new_stock = item.stock, new_stock
        item.stock = new_stock
    if price_changes and new_price is not None:
        change.old_price, change.new_price = item.wholesale_price, new_price
        item.wholesale_price = new_price
    return change


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("En cola")
    RUNNING = "running", _("Importando")
    DONE = "done", _("Terminada")
    FAILED = "failed", _("No se importó")


class CatalogImport(models.Model):
    """A CSV file too large to apply within the web request.

    Recorded (already validated) first, applied by a background task, which keeps
    the report here and drops the file. Small files are applied in the request
    and leave no row.
    """

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="imports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor = models.CharField(max_length=200)
    filename = models.CharField(max_length=255)
    # The uploaded bytes, in the database so that any worker can read them; emptied
    # once the import has finished.
    content = models.BinaryField(default=b"")
    size = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    # ImportReport.to_json() once finished.
    report = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["store", "-created_at"], name="import_store_created")]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)
