"""Reading every change from NonSistemas' live, offset-paged `/api/stock`.

The contract's paging is the hard part (docs/sync-correctness.md is the long
form). Pages are computed at request time over items ordered by (modificado,
codigo); an item edited while we page moves to the end and the items behind its
old place shift forward, so plain `pagina=1,2,3...` skips items. Changes also
become visible up to 90 s after their `modificado`, and the instance's clock is
not ours.

The reader therefore:

1. Pages by key, not by offset: after each page the cursor becomes the page's
   last `modificado` and the next request asks `desde=cursor` from the start.
   Everything before the cursor was read in one contiguous page, so nothing
   there can be skipped.
2. Only within one `modificado` second holding more items than a page (a bulk
   edit) does it page by offset, and then it re-reads a few items it already has
   (overlap) and checks that the page starts with one of them. If it does not,
   items before that offset left the group (they were edited; they will come
   again at the end) and the reader backs off to re-read from further back.
   This is the only way a skip could happen, and it is detected every time.
3. Records, as the next run's `desde`, the instance's own `hora_servidor` at the
   first page minus the late-commit window and a safety margin. Any change this
   run could have missed became visible after that first page, so its
   `modificado` is at or after that point and the next run reads it.

Duplicates are fine (applying an item twice changes nothing the second time);
the reader drops only the ones it can prove it already yielded.
"""

import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.utils import timezone

from erp.errors import ErpError, ErrorCode
from erp.nonsistemas.wire import MAX_PAGE_SIZE, StockPage
from erp.sources import ErpItem, FeedStats

# A change becomes visible up to 90 s after its `modificado` (the contract).
LATE_COMMIT_WINDOW = timedelta(seconds=90)
# Slack on top: request latency between the instance stamping `hora_servidor` and
# our reading it, second truncation, clock jitter between an instance's app servers.
SAFETY_MARGIN = timedelta(seconds=90)
WATERMARK_LAG = LATE_COMMIT_WINDOW + SAFETY_MARGIN

# A backward move of the instance's clock (against ours) beyond this, between two
# runs, makes the next run start earlier by as much.
CLOCK_JUMP_TOLERANCE = 5.0

# Items of the cursor's second we re-read to prove the next offset page joins up.
OVERLAP = 5
# A run stops as absurd after this many pages beyond what the first answer announced.
PAGE_MARGIN = 20
# Full pages in a row that bring nothing new before the run stops as absurd.
MAX_PAGES_WITHOUT_PROGRESS = 5

Fetch = Callable[..., StockPage]


def page_for_offset(offset: int, page_size: int = MAX_PAGE_SIZE) -> tuple[int, int]:
    """(pagina, por_pagina) of a page starting at or a little before `offset`.

    The API only offers offsets that are multiples of the page size, so we pick
    the size in [page_size / 2, page_size] that lands closest below it. Below
    half a page we re-read from the start instead: cheaper than a small page.
    """
    smallest = max(1, page_size // 2)
    if offset < smallest:
        return 1, page_size
    if offset <= page_size:
        return 2, offset
    best_slack, best_size = offset, page_size
    for size in range(page_size, smallest - 1, -1):
        slack = offset % size
        if slack < best_slack:
            best_slack, best_size = slack, size
            if slack <= OVERLAP:
                break
    return offset // best_size + 1, best_size


class ChangeReader:
    """Iterate over batches of changed items; afterwards `next_watermark` is set."""

    def __init__(
        self,
        fetch: Fetch,
        since: datetime | None,
        stats: FeedStats,
        *,
        page_size: int = MAX_PAGE_SIZE,
        previous_clock_offset: float | None = None,
        now: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.fetch = fetch
        self.page_size = page_size
        self.since = since
        self.stats = stats
        self.previous_clock_offset = previous_clock_offset
        self.now = now
        self.server_start: datetime | None = None
        self.next_watermark: datetime | None = None
        # The instance's clock minus ours, in seconds, at this run's first page.
        self.clock_offset: float | None = None

    def __iter__(self) -> Iterator[list[ErpItem]]:
        if self.since is not None:
            # `modificado` has whole seconds; a cursor between two would make the
            # items of its own second look out of order.
            self.since = self.since.replace(microsecond=0)
        cursor = self.since
        # Raw codes of the items at `cursor`'s second already yielded.
        seen: set[str] = set()
        # Where, in the API's order of `desde=cursor`, the last accepted page ended:
        # everything before it has been read.
        read_up_to = 0
        # Small pages (tests) need a smaller overlap for an offset page to reach
        # past what was already read.
        base_overlap = max(1, min(OVERLAP, self.page_size // 4))
        overlap = base_overlap
        page_budget: int | None = None
        without_progress = 0
        first_page = True

        while True:
            pagina, por_pagina = page_for_offset(max(0, read_up_to - overlap), self.page_size)
            page = self.fetch(desde=cursor, pagina=pagina, por_pagina=por_pagina)
            self.stats.pages += 1
            if first_page:
                first_page = False
                # Only the first page's time is a safe point for the next run (a
                # later page's would skip changes made since the first).
                self.server_start = page.hora_servidor
                if self._clock_went_back(page) and cursor is not None:
                    # Edits stamped after the jump carry times earlier than our
                    # watermark by up to the jump: start that much earlier (and
                    # budget the pages of that longer span).
                    shifted = cursor - timedelta(seconds=math.ceil(self._jump))
                    cursor = self.since = shifted.replace(microsecond=0)
                    continue
            if page_budget is None:
                self.stats.expected = page.total_items
                # Each page of new items costs at most two requests (one may re-read).
                half_page = max(1, self.page_size // 2)
                page_budget = self.stats.pages - 1
                page_budget += -(-page.total_items // half_page) * 2 + PAGE_MARGIN
            if self.stats.pages > page_budget:
                raise ErpError(
                    ErrorCode.ABSURD_RESPONSE,
                    f"NonSistemas devolvió más páginas de las que anunció "
                    f"({self.stats.pages} páginas para {self.stats.expected} ítems). "
                    "La actualización se detuvo para no quedar en un ciclo; "
                    "si se repite, avisá al soporte de NonSistemas.",
                )
            items = page.items
            if len(items) > por_pagina:
                raise ErpError(
                    ErrorCode.ABSURD_RESPONSE,
                    f"NonSistemas devolvió {len(items)} ítems en una página de {por_pagina}. "
                    "La actualización se detuvo; si se repite, avisá al soporte de NonSistemas.",
                )
            _check_order(items, cursor)

            offset = (pagina - 1) * por_pagina
            if offset > 0 and not (items and items[0].modified == cursor and items[0].code in seen):
                # Items before this offset left the cursor's second (edited while we
                # paged), so this page may start past one we never saw. Re-read
                # from further back; everything that left comes again later.
                overlap *= 8
                continue
            overlap = base_overlap

            fresh = []
            for item in items:
                if item.modified is not None and item.modified == cursor and item.code in seen:
                    self.stats.reread += 1
                else:
                    fresh.append(item)

            last = _last_modified(items)
            if last is not None and (cursor is None or last > cursor):
                # A new second: its items on this page are its first ones.
                cursor = last
                seen = {item.code for item in items if item.modified == last}
                read_up_to = len(seen)
            else:
                seen.update(item.code for item in items if item.modified == cursor)
                read_up_to = offset + len(items)

            if fresh:
                without_progress = 0
                yield fresh
            elif len(items) == por_pagina:
                without_progress += 1
                if without_progress >= MAX_PAGES_WITHOUT_PROGRESS:
                    raise ErpError(
                        ErrorCode.ABSURD_RESPONSE,
                        "NonSistemas repite la misma página sin avanzar. La actualización "
                        "se detuvo; si se repite, avisá al soporte de NonSistemas.",
                    )
            if len(items) < por_pagina:
                break  # the end of the data as it is now

        self.next_watermark = self._watermark()

    _jump = 0.0

    def _clock_went_back(self, page: StockPage) -> bool:
        """Whether the instance's clock moved back against ours since the last run."""
        if page.hora_servidor is None:
            # Unknown this time: the last known offset stays the baseline.
            self.clock_offset = self.previous_clock_offset
            return False
        self.clock_offset = (page.hora_servidor - self.now()).total_seconds()
        if self.previous_clock_offset is None:
            return False
        # A few seconds of drift are request latency and second truncation, which
        # the watermark's margin already covers.
        self._jump = self.previous_clock_offset - self.clock_offset
        return self._jump > CLOCK_JUMP_TOLERANCE

    def _watermark(self) -> datetime | None:
        if self.server_start is None:
            # The instance did not say its time on the first page: we cannot place
            # a safe point in its clock, so the next run starts where this one did.
            return self.since
        return self.server_start - WATERMARK_LAG


def _last_modified(items: list[ErpItem]) -> datetime | None:
    for item in reversed(items):
        if item.modified is not None:
            return item.modified
    return None


def _check_order(items: list[ErpItem], cursor: datetime | None) -> None:
    previous = cursor
    for item in items:
        if item.modified is None:
            continue
        if previous is not None and item.modified < previous:
            # Paging by key relies on this order; out of order, we could skip items.
            raise ErpError(
                ErrorCode.ABSURD_RESPONSE,
                "NonSistemas devolvió los ítems fuera del orden por fecha de modificación "
                "que indica su API, o anteriores a la fecha pedida. La actualización se "
                "detuvo para no saltear cambios; avisá al soporte de NonSistemas.",
            )
        previous = item.modified
