"""The store's catalog: sellable items by SKU, and the history of their stock and price."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from stores.models import Store

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    from erp.models import Run

LOW_STOCK_THRESHOLD = 5


def sku_key(sku: str) -> str:
    """The form under which SKUs and ERP codes are matched.

    Surrounding whitespace is dropped and letter case ignored, so "  ace-0001" and
    "ACE-0001" are the same item. Two store SKUs with the same key are ambiguous.
    """
    return sku.strip().casefold()


class Item(models.Model):
    """A sellable item: a product, or one variant of it that has its own SKU."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField("SKU", max_length=100)
    # Kept in step with `sku` by save() and by every bulk writer; indexed for matching.
    sku_key = models.CharField(max_length=100, editable=False)
    name = models.CharField("nombre", max_length=300)
    stock = models.BigIntegerField("stock", default=0)
    wholesale_price = models.DecimalField("precio mayorista", max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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
            models.Index(fields=["store", "sku_key"], name="item_store_skukey"),
            models.Index(fields=["store", "stock", "sku"], name="item_store_stock_sku"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.sku_key = sku_key(self.sku)
        super().save(*args, **kwargs)


class ChangeSource(models.TextChoices):
    MANUAL = "manual", "Edición manual"
    CSV = "csv", "Importación CSV"
    ERP = "erp", "NonSistemas"


class ItemChange(models.Model):
    """One change of an item's stock and/or price: the item's history.

    A field that did not change in this event has both its old and new value NULL.
    """

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField("cuándo", db_index=True)
    source = models.CharField("origen", max_length=16, choices=ChangeSource.choices)
    # Who made it: a user for manual edits and imports from the panel, an ERP run for
    # updates; `actor` keeps a readable name even if the user is deleted.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        "erp.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    actor = models.CharField("quién", max_length=200, blank=True)
    old_stock = models.BigIntegerField(null=True, blank=True)
    new_stock = models.BigIntegerField(null=True, blank=True)
    old_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    new_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["item", "-at"], name="itemchange_item_at"),
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
    QUEUED = "queued", "En cola"
    RUNNING = "running", "Importando"
    DONE = "done", "Terminada"
    FAILED = "failed", "No se importó"


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
