"""Locking items against the ERP: an update leaves a locked item's stock and price
alone and lists it in its report (erp.engine.Applier). CSV imports and manual edits
still change it: the lock is against the ERP only.

A lock or unlock is one transaction that locks the items' rows (an update page
holding them finishes first) and records a history row per item saying who and
when. The update reads the flag inside each page's transaction, with the rows it
locks, so a lock committed while an update runs is honoured from the next page that
reads the item on.
"""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import ChangeSource, Item, ItemChange, clean_sku, sku_key
from stores.models import Store


class SkuNotFound(Exception):
    """Some SKUs name no item, or several: nothing was locked or unlocked."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


def find_items(store: Store, skus: Iterable[str]) -> list[Item]:
    """The store's items the SKUs name, by the product's SKU rule: the item whose
    SKU is exactly the one given (as written, then without surrounding spaces), else
    the only item with its `sku_key`. Raises SkuNotFound listing every SKU that
    names no item or several, so a caller does all or nothing."""
    found: dict[int, Item] = {}
    problems = []
    for raw in skus:
        candidates = list(Item.objects.filter(store=store, sku_key=sku_key(raw)).order_by("id"))
        exact = [i for i in candidates if i.sku == raw] or [
            i for i in candidates if i.sku == clean_sku(raw)
        ]
        if exact:
            item = exact[0]
        elif len(candidates) == 1:
            item = candidates[0]
        elif not candidates:
            problems.append(
                _("«%(sku)s»: no hay ningún producto con ese SKU en «%(store)s».")
                % {"sku": raw, "store": store.slug}
            )
            continue
        else:
            listed = ", ".join(_("«%(sku)s»") % {"sku": i.sku} for i in candidates)
            problems.append(
                _(
                    "«%(sku)s»: varios productos tienen ese SKU al ignorar mayúsculas y "
                    "espacios (%(listed)s); escribilo exactamente como el del producto que "
                    "querés."
                )
                % {"sku": raw, "listed": listed}
            )
            continue
        found[item.pk] = item
    if problems:
        raise SkuNotFound(problems)
    return list(found.values())


def set_erp_lock(
    store: Store, item_ids: Iterable[int], *, locked: bool, actor: str, user: Any = None
) -> list[Item]:
    """Lock (or unlock) the store's items `item_ids` against the ERP, in one
    transaction. Returns the items whose state changed (one already so is left
    alone, with no history row)."""
    now = timezone.now()
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        # Row locks, as a manual edit takes: an update page that holds one of these
        # rows finishes first, and the next page that reads the item sees the flag.
        items = list(
            Item.objects.select_for_update()
            .filter(store=store, pk__in=list(item_ids))
            .order_by("id")
            .only("id", "sku", "erp_locked", "store_id")
        )
        changed = [item for item in items if item.erp_locked != locked]
        if not changed:
            return []
        # updated_at stays: it says when the stock or price last changed.
        Item.objects.filter(pk__in=[i.pk for i in changed]).update(erp_locked=locked)
        ItemChange.objects.bulk_create(
            ItemChange(
                store=store,
                item=item,
                at=now,
                source=ChangeSource.LOCK if locked else ChangeSource.UNLOCK,
                actor=actor,
                user_id=user_id,
            )
            for item in changed
        )
    for item in changed:
        item.erp_locked = locked
    return changed
