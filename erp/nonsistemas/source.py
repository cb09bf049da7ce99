"""NonSistemas as an `ErpSource`: verify a connection, open a change feed."""

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from erp.nonsistemas.client import NonSistemasClient
from erp.nonsistemas.feed import ChangeReader
from erp.nonsistemas.wire import MAX_PAGE_SIZE, StockPage
from erp.registry import Provider
from erp.sources import Feed, FeedStats, Verification


class NonSistemasSource:
    """Every call into the client goes through a `sensitive_variables()` method.

    Django's error report hides the local variables of every frame below the
    nearest decorated caller, so a crash anywhere inside httpx/httpcore (whose
    frames hold the login body with the password and the request headers with
    the Bearer token) reports stars there, never the values.
    """

    @sensitive_variables()
    def __init__(
        self, *, url: str, username: str, password: str, ca_cert_pem: str | None = None
    ) -> None:
        self._credentials = (url, username, password)
        self._ca_cert_pem = ca_cert_pem
        self.client: NonSistemasClient | None = None
        self._heartbeat: Callable[[], None] | None = None

    @sensitive_variables()
    def _new_client(self, *, run: bool = False, **options: Any) -> NonSistemasClient:
        from erp.pacing import HostPacer
        from erp.url_guard import guarded_transport

        # Certificate verification stays on: the store's private CA (if any) is
        # trusted in addition to the public roots, never instead of verifying.
        transport = guarded_transport(
            allow_local=bool(settings.VXM_ALLOW_LOCAL_ERP), ca_cert_pem=self._ca_cert_pem
        )
        # Every request keeps the host's shared pace; a run also holds one of the
        # host's places until it closes (erp/pacing.py).
        pacer = HostPacer(self._credentials[0], run=run, on_wait=self._heartbeat)
        return NonSistemasClient(*self._credentials, transport=transport, pacer=pacer, **options)

    @sensitive_variables()
    def verify(self) -> Verification:
        # An admin is waiting on the page: one quick retry, not a run's patience.
        with self._new_client(max_retries=1, timeout=10.0, request_deadline=20.0) as client:
            version = client.version()
            client.login()
        return Verification(product="NonSistemas", version=version)

    def feed(
        self,
        since: datetime | None,
        *,
        previous_clock_offset: float | None = None,
        heartbeat: Callable[[], None] | None = None,
    ) -> Feed:
        self._heartbeat = heartbeat
        # No new request of a run starts past its deadline: a run cannot hang a worker.
        self.client = self._new_client(
            run=True, run_deadline=time.monotonic() + settings.VXM_ERP_RUN_SECONDS
        )
        stats: FeedStats = self.client.stats
        # Smaller pages only in tests, to exercise multi-page paging on small catalogs.
        page_size = int(getattr(settings, "VXM_NONSISTEMAS_PAGE_SIZE", MAX_PAGE_SIZE))
        reader = ChangeReader(
            self._stock_page,
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

    @sensitive_variables()
    def _stock_page(self, **kwargs: Any) -> StockPage:
        # The feed's generator frames cannot be decorated (the decorator's frame is
        # gone once it has returned the generator): each page fetch is, instead.
        assert self.client is not None
        # Every page request beats, and learns here if the run was declared dead;
        # during a long request (retries, re-logins, up to the client's deadline)
        # the engine's beating thread keeps the run alive.
        if self._heartbeat is not None:
            self._heartbeat()
        return self.client.stock_page(**kwargs)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


PROVIDER = Provider(
    kind="nonsistemas",
    name="NonSistemas",
    summary=_("Stock y precios mayoristas desde tu NonSistemas, por SKU."),
    make_source=NonSistemasSource,
)
