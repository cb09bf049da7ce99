"""NonSistemas as an `ErpSource`: verify a connection, open a change feed."""

import time
from datetime import datetime
from typing import Any

from django.conf import settings

from erp.nonsistemas.client import NonSistemasClient
from erp.nonsistemas.feed import ChangeReader
from erp.nonsistemas.wire import MAX_PAGE_SIZE
from erp.registry import Provider
from erp.sources import Feed, FeedStats, Verification


class NonSistemasSource:
    def __init__(self, *, url: str, username: str, password: str) -> None:
        self._credentials = (url, username, password)
        self.client: NonSistemasClient | None = None

    def _new_client(self, **options: Any) -> NonSistemasClient:
        from erp.url_guard import guarded_transport

        transport = guarded_transport(allow_local=bool(settings.VXM_ALLOW_LOCAL_ERP))
        return NonSistemasClient(*self._credentials, transport=transport, **options)

    def verify(self) -> Verification:
        # An admin is waiting on the page: one quick retry, not a run's patience.
        with self._new_client(max_retries=1, timeout=10.0, request_deadline=20.0) as client:
            version = client.version()
            client.login()
        return Verification(product="NonSistemas", version=version)

    def feed(self, since: datetime | None, *, previous_clock_offset: float | None = None) -> Feed:
        # No new request of a run starts past its deadline: a run cannot hang a worker.
        self.client = self._new_client(run_deadline=time.monotonic() + settings.VXM_ERP_RUN_SECONDS)
        stats: FeedStats = self.client.stats
        # Smaller pages only in tests, to exercise multi-page paging on small catalogs.
        page_size = int(getattr(settings, "VXM_NONSISTEMAS_PAGE_SIZE", MAX_PAGE_SIZE))
        reader = ChangeReader(
            self.client.stock_page,
            since,
            stats,
            page_size=page_size,
            previous_clock_offset=previous_clock_offset,
        )
        feed = Feed(batches=iter(()), stats=stats)

        def batches():  # type: ignore[no-untyped-def]
            yield from reader
            feed.next_watermark = reader.next_watermark
            feed.clock_offset = reader.clock_offset

        feed.batches = batches()
        return feed

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


PROVIDER = Provider(
    kind="nonsistemas",
    name="NonSistemas",
    summary="Stock y precios mayoristas desde tu NonSistemas, por SKU.",
    make_source=NonSistemasSource,
)
