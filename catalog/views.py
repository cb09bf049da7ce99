"""Catalog pages: the item list, one item (history and manual edit), CSV import and export.

Every view goes through `store_view`: the store comes from the URL and must be one
of the user's, and every query below is filtered by it.
"""

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext
from django.views.decorators.http import require_POST, require_safe

from catalog import export
from catalog.background_import import applies_in_background, expire_stale_imports, queue_import
from catalog.csv_import import (
    COLUMNS,
    MAX_FILE_BYTES,
    NOTHING_IMPORTED,
    ImportReport,
    import_csv,
)
from catalog.forms import ImportForm, ItemEditForm, SearchForm
from catalog.history import cursor, history_page
from catalog.locks import set_erp_lock
from catalog.models import (
    LOW_STOCK_THRESHOLD,
    CatalogImport,
    ChangeSource,
    Item,
    ambiguous_keys,
    change_for,
    search_fold,
)
from catalog.templatetags.money import money, thousands
from erp.health import last_erp_change, last_erp_update
from erp.models import Connection
from stores.access import store_view
from stores.models import Store
from vxm import spreadsheets
from vxm.retention import retention_days

PAGE_SIZE = 50
# The list shows "más de 1.000" beyond this: counting every match of a 300,000-item
# catalog on each page view would cost more than the page itself.
COUNT_CAP = 1000
# The ?sku=ambiguous list shows the items of at most this many groups (the first
# by key): a list of keys in one query, well under SQLite's 32,766 parameters.
AMBIGUOUS_LIST_CAP = 5000
# A search with more words than this uses only the first ones.
MAX_SEARCH_TERMS = 5
LIST_COLUMNS = ("id", "sku", "name", "stock", "wholesale_price", "updated_at", "erp_locked")


def _actor(request: HttpRequest) -> str:
    user: Any = request.user
    return str(user.email or user.get_username())


def _filtered(store: Store, q: str, stock: str, sku: str = "") -> QuerySet[Item]:
    items = Item.objects.filter(store=store)
    if sku == "ambiguous":
        # The keys are read once (a GROUP BY over the store's whole index) and
        # passed as a list: as a subquery the page, its count and its pager
        # would each run it again.
        keys = list(ambiguous_keys(store).order_by("sku_key")[:AMBIGUOUS_LIST_CAP])
        items = items.filter(sku_key__in=keys)
    # Both stock filters use the (store, stock, sku_key, id) index; "locked" the
    # partial (store, sku_key, id) index of locked items: same order, same keyset.
    if stock == "out":
        items = items.filter(stock=0)
    elif stock == "low":
        items = items.filter(stock__gte=1, stock__lte=LOW_STOCK_THRESHOLD)
    elif stock == "locked":
        items = items.filter(erp_locked=True)
    # Every word must appear in the SKU or the name, letter case and accents aside:
    # "tornillo 1/2" finds "Tornillo hexagonal 1/2 pulgada", "azucar" finds "Azúcar".
    # The words are folded like Item.search_text and looked for in it with LIKE
    # (case-sensitive on PostgreSQL, so its trigram index serves it).
    for term in search_fold(q).split()[:MAX_SEARCH_TERMS]:
        items = items.filter(search_text__contains=term)
    return items


def _cursor(store: Store, pk: int | None) -> tuple[str, int] | None:
    """The (sku_key, id) position of the item `pk` of this store; None if there is
    no such item (deleted since the link was drawn: the list starts over)."""
    if pk is None:
        return None
    key = Item.objects.filter(store=store, pk=pk).values_list("sku_key", flat=True).first()
    return None if key is None else (key, pk)


def _beyond(position: tuple[str, int], *, forward: bool, inclusive: bool = False) -> Q:
    """Items after (or before) `position` in the list's (sku_key, id) order.

    The redundant `sku_key >= key` (or <=) bounds the index range, so both databases
    start the walk of (store, sku_key, id) at the position instead of filtering from
    the store's first item.
    """
    key, pk = position
    if forward:
        pk_cmp = Q(pk__gte=pk) if inclusive else Q(pk__gt=pk)
        return Q(sku_key__gte=key) & (Q(sku_key__gt=key) | (Q(sku_key=key) & pk_cmp))
    pk_cmp = Q(pk__lte=pk) if inclusive else Q(pk__lt=pk)
    return Q(sku_key__lte=key) & (Q(sku_key__lt=key) | (Q(sku_key=key) & pk_cmp))


def _page(
    items: QuerySet[Item], after: tuple[str, int] | None, before: tuple[str, int] | None
) -> tuple[list[Item], bool, bool]:
    """One page by keyset on (sku_key, id): (items, has_previous, has_next).

    `after` is the position of the last item of the page before (the "Siguientes"
    link carries that item's id), `before` that of the first item of the page after.
    The order is the SKU's key (letter case and surrounding spaces aside), then the
    id: a total order, so every item is reached exactly once whatever its SKU holds.
    Each page is a LIMIT 51 walk of the index from that position: as fast on page
    6,000 as on page 1, and nothing is skipped or repeated when items are added
    meanwhile.
    """
    columns = items.only(*LIST_COLUMNS)
    if before is not None and after is None:
        rows = list(
            columns.filter(_beyond(before, forward=False)).order_by("-sku_key", "-id")[
                : PAGE_SIZE + 1
            ]
        )
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            rows.reverse()
            has_next = items.filter(_beyond(before, forward=True, inclusive=True)).exists()
            return rows, True, has_next
        # Fewer than a page before it: that is the first page; show it whole.
        after = None
    ordered = columns.order_by("sku_key", "id")
    if after is not None:
        ordered = ordered.filter(_beyond(after, forward=True))
    rows = list(ordered[: PAGE_SIZE + 1])
    has_next = len(rows) > PAGE_SIZE
    has_previous = (
        after is not None and items.filter(_beyond(after, forward=False, inclusive=True)).exists()
    )
    return rows[:PAGE_SIZE], has_previous, has_next


@store_view
def item_list(request: HttpRequest, store: Store) -> HttpResponse:
    form = SearchForm(request.GET)
    # cleaned_data keeps the fields that are valid: an odd ?stock= value does not
    # throw away the search words.
    form.is_valid()
    data = form.cleaned_data
    q = str(data.get("q") or "").strip()
    stock = str(data.get("stock") or "")
    sku = str(data.get("sku") or "")
    items = _filtered(store, q, stock, sku)
    rows, has_previous, has_next = _page(
        items, _cursor(store, data.get("after")), _cursor(store, data.get("before"))
    )
    # A capped count: SELECT COUNT(*) over at most COUNT_CAP + 1 index entries.
    total = items.order_by()[: COUNT_CAP + 1].count()
    return render(
        request,
        "catalog/item_list.html",
        {
            "nav": "catalog",
            "store": store,
            "form": form,
            "q": q,
            "stock": stock,
            "items": rows,
            "has_previous": has_previous,
            "has_next": has_next,
            "first_id": rows[0].pk if rows else None,
            "last_id": rows[-1].pk if rows else None,
            "total": min(total, COUNT_CAP),
            "total_capped": total > COUNT_CAP,
            "filtered": bool(q or stock or sku),
            "sku_filter": sku,
            "erp_freshness": last_erp_update(store),
            "erp_name": _erp_name(store),
            "paged": bool(request.GET.get("after") or request.GET.get("before")),
            "low_stock_threshold": LOW_STOCK_THRESHOLD,
        },
    )


def _change_message(change: Any, currency: str) -> str:
    parts = []
    if change.stock_changed:
        parts.append(
            gettext("stock %(old)s → %(new)s")
            % {"old": thousands(change.old_stock), "new": thousands(change.new_stock)}
        )
    if change.price_changed:
        parts.append(
            gettext("precio %(old)s → %(new)s")
            % {"old": money(change.old_price, currency), "new": money(change.new_price, currency)}
        )
    return gettext("Guardado: %(what)s.") % {"what": gettext(" y ").join(parts)}


def _erp_name(store: Store) -> str:
    """The name of the ERP the store's stock and prices come from, or ""."""
    connection = Connection.objects.filter(store=store).only("kind").first()
    return connection.get_kind_display() if connection is not None else ""


def _overwrite_warning(erp_name: str) -> str:
    return gettext(
        "Ojo: la próxima actualización desde %(erp)s que traiga este producto lo va a "
        "reemplazar; para que el cambio quede, hacelo también en %(erp)s."
    ) % {"erp": erp_name}


@store_view
def item_detail(request: HttpRequest, store: Store, pk: int) -> HttpResponse:
    item = get_object_or_404(Item, store=store, pk=pk)
    # A manual edit lasts only until the ERP sends the item again: say so.
    erp_name = _erp_name(store)
    if request.method == "POST":
        form = ItemEditForm(request.POST)
        if form.is_valid():
            new_stock, new_price = form.requested()
            change = None
            if new_stock is not None or new_price is not None:
                with transaction.atomic():
                    # Re-read under lock: the history's "old" values are what was
                    # really replaced, even if the ERP wrote a moment ago.
                    item = Item.objects.select_for_update().get(pk=item.pk, store=store)
                    change = change_for(
                        item,
                        new_stock=new_stock,
                        new_price=new_price,
                        source=ChangeSource.MANUAL,
                        at=timezone.now(),
                        actor=_actor(request),
                        user=request.user,
                    )
                    if change is not None:
                        item.save(update_fields=["stock", "wholesale_price", "updated_at"])
                        change.save()
            if change is None:
                messages.info(
                    request, gettext("No hubo cambios: el stock y el precio ya eran esos.")
                )
            else:
                saved = _change_message(change, store.currency)
                # A locked item keeps the edit: the page says so already.
                if erp_name and not item.erp_locked:
                    saved = f"{saved} {_overwrite_warning(erp_name)}"
                messages.success(request, saved)
            return redirect("catalog:item", store_slug=store.slug, pk=item.pk)
    else:
        form = ItemEditForm(
            initial={
                "stock": item.stock,
                "wholesale_price": f"{item.wholesale_price:.2f}".replace(".", ","),
                "seen_stock": item.stock,
                "seen_price": f"{item.wholesale_price:.2f}",
            }
        )
    history = history_page(
        item,
        older_than=cursor(request.GET.get("older_than")),
        newer_than=cursor(request.GET.get("newer_than")),
    )
    # Who locked it and when: the newest lock in its history.
    lock = (
        (
            item.changes.filter(source=ChangeSource.LOCK).order_by("-at", "-id").only("at", "actor")
        ).first()
        if item.erp_locked
        else None
    )
    return render(
        request,
        "catalog/item_detail.html",
        {
            "nav": "catalog",
            "store": store,
            "item": item,
            "form": form,
            "history": history.rows,
            "history_page": history,
            "retention_days": retention_days(),
            "low_stock_threshold": LOW_STOCK_THRESHOLD,
            "erp_name": erp_name,
            "lock": lock,
            "erp_change": last_erp_change(item),
        },
    )


@store_view
@require_POST
def item_lock(request: HttpRequest, store: Store, pk: int) -> HttpResponse:
    """Lock or unlock the item against the ERP. The form says which (`locked` 1 or
    0), not "toggle": a form sent twice, or from a page drawn before someone else
    changed it, leaves the state asked for."""
    item = get_object_or_404(Item.objects.only("id", "sku"), store=store, pk=pk)
    locked = request.POST.get("locked")
    if locked not in ("0", "1"):
        messages.error(request, gettext("No entendimos qué hacer: usá el botón de la página."))
        return redirect("catalog:item", store_slug=store.slug, pk=item.pk)
    erp_name = _erp_name(store) or gettext("el ERP")
    changed = set_erp_lock(
        store, [item.pk], locked=locked == "1", actor=_actor(request), user=request.user
    )
    if locked == "1":
        messages.success(
            request,
            (
                gettext(
                    "Bloqueado: %(erp)s no cambia el stock ni el precio de «%(sku)s» hasta "
                    "que lo desbloquees."
                )
                if changed
                else gettext("«%(sku)s» ya estaba bloqueado.")
            )
            % {"erp": erp_name, "sku": item.sku},
        )
    else:
        messages.success(
            request,
            (
                gettext(
                    "Desbloqueado: la próxima actualización completa le trae el stock y el "
                    "precio de %(erp)s."
                )
                if changed
                else gettext("«%(sku)s» no estaba bloqueado.")
            )
            % {"erp": erp_name, "sku": item.sku},
        )
    return redirect("catalog:item", store_slug=store.slug, pk=item.pk)


@store_view
def item_import(request: HttpRequest, store: Store) -> HttpResponse:
    report = None
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            if applies_in_background(upload):
                report, job = queue_import(store, upload, actor=_actor(request), user=request.user)
                if job is not None:
                    return redirect("catalog:import_detail", store_slug=store.slug, pk=job.pk)
            else:
                report = import_csv(store, upload, actor=_actor(request), user=request.user)
                if report.applied:
                    messages.success(request, report.summary())
                    form = ImportForm()
    else:
        form = ImportForm()
    return render(
        request,
        "catalog/item_import.html",
        {
            "nav": "catalog",
            "store": store,
            "form": form,
            "report": report,
            "columns": ",".join(COLUMNS),
            "max_mb": MAX_FILE_BYTES // (1024 * 1024),
            "nothing_imported": NOTHING_IMPORTED,
            "recent_imports": CatalogImport.objects.filter(store=store).defer("content")[:5],
        },
    )


@store_view
@require_safe
def import_detail(request: HttpRequest, store: Store, pk: int) -> HttpResponse:
    """A background import: its progress (polled by htmx), then its report."""
    expire_stale_imports(store)
    job = get_object_or_404(CatalogImport.objects.defer("content"), store=store, pk=pk)
    context = {
        "nav": "catalog",
        "store": store,
        "job": job,
        "report": ImportReport.from_json(job.report) if job.report else None,
        "nothing_imported": NOTHING_IMPORTED,
    }
    polled = request.headers.get("HX-Request") == "true"
    template = "catalog/_import_status.html" if polled else "catalog/import_detail.html"
    response = render(request, template, context)
    # One URL, two answers: a cache (the back button) must not serve the fragment
    # as the page.
    patch_vary_headers(response, ["HX-Request"])
    return response


@store_view
def item_export(
    request: HttpRequest, store: Store
) -> StreamingHttpResponse | FileResponse | HttpResponseBadRequest:
    """The catalog as `?format=`: xlsx, csv (the Excel one: `;`, decimal comma,
    Spanish headers, which our import reads back) or json."""
    fmt = request.GET.get("format", "csv")
    if fmt not in export.FORMATS:
        return HttpResponseBadRequest(gettext("Formato desconocido: usá csv, xlsx o json."))
    stamp = timezone.localtime(timezone.now(), store.tz).strftime("%Y%m%d-%H%M")
    filename = f"catalogo-{store.slug}-{stamp}.{fmt}"
    locale = spreadsheets.report_locale()
    if fmt == "xlsx":
        return spreadsheets.xlsx_response(
            export.SPREADSHEET_COLUMNS,
            export.iter_rows(store),
            store.tz,
            locale,
            gettext("Catálogo"),
            filename,
        )
    if fmt == "csv":
        return spreadsheets.csv_response(
            export.SPREADSHEET_COLUMNS, export.iter_rows(store), store.tz, locale, filename
        )
    response = StreamingHttpResponse(export.iter_json(store), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
