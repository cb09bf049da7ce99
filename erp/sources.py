"""What the ERP-agnostic update engine needs from an ERP.

An ERP integration (erp/nonsistemas/ is one) provides an `ErpSource`: it can
verify a connection and open a change feed. The feed yields batches of
`ErpItem`s, each item at most once per run unless it changed again, and after
the last batch tells the watermark the next incremental run should start from.
Everything about the ERP's wire format, paging and clocks stays behind it.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ErpItem:
    code: str  # as the ERP sent it, surrounding spaces and case included; "" if missing
    stock: Decimal | None  # None: missing or unreadable (stock_raw says what came)
    price: Decimal | None  # None: no price (price_raw is None) or unreadable (price_raw set)
    currency: str  # ISO code; the ERP's default when it sends none
    active: bool
    modified: datetime | None  # aware, in the ERP's clock
    stock_raw: object = None
    price_raw: object = None
    description: str = ""


@dataclass
class FeedStats:
    """Transport detail of a run, shown only as a detail on its page."""

    pages: int = 0
    requests: int = 0
    retries: int = 0
    relogins: int = 0
    reread: int = 0
    # How many items the ERP announced at the start (for progress bars); None: unknown.
    expected: int | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    product: str
    version: str
    detail: str = ""


@dataclass
class Feed:
    """A run's stream of changed items (a generator), its stats and, once the
    stream is exhausted, the watermark for the next run (None: don't move it)."""

    batches: Iterator[list[ErpItem]]
    stats: FeedStats = field(default_factory=FeedStats)
    next_watermark: datetime | None = None
    # The ERP's clock minus ours (seconds) during this run, kept for the next run
    # to notice the ERP's clock moving back. None: unknown.
    clock_offset: float | None = None


class ErpSource(Protocol):
    def verify(self) -> Verification:
        """Try the connection without changing anything; raise ErpError naming the problem."""
        ...

    def feed(
        self,
        since: datetime | None,
        *,
        previous_clock_offset: float | None = None,
        heartbeat: Callable[[], None] | None = None,
    ) -> Feed:
        """Items changed at or after `since` (every item when None).

        `previous_clock_offset` is the last successful run's `Feed.clock_offset`.
        `heartbeat` is called before each request to the ERP; it raises ErpError
        when the run was declared dead, and the feed lets that end it."""
        ...

    def close(self) -> None: ...
