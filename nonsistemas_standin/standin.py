"""`Standin`: a stand-in serving in a background thread of the calling process.

    with Standin.start(port=0, items=1000) as s:
        httpx.get(s.url + "/api/version")
        s.edit([{"codigo": "ACE-0001", "stock": "0"}])

Its control methods are the same, with the same signatures, as `StandinClient`'s,
which drives a stand-in in another process over HTTP.
"""

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from .faults import Fault
from .instance import Instance
from .server import StandinHTTPServer

HOST = "127.0.0.1"  # a test double: never reachable from another machine


class Standin:
    def __init__(self, server: StandinHTTPServer) -> None:
        """Use `Standin.start()`; this wraps an already bound server."""
        self._server = server
        self._instance = server.instance
        self._thread: threading.Thread | None = None
        self._stopped = False

    @classmethod
    def start(
        cls,
        port: int = 0,
        user: str = "api-ventas",
        password: str = "s3cret",
        items: int = 0,
        seed: int = 1,
        prefix: str = "",
        token_ttl: int = 1800,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> Self:
        """Bind 127.0.0.1:`port` (0: any free port) and serve in a daemon thread.

        `settings` are further `configure()` settings the instance starts with;
        together with `token_ttl` they are what `reset()` returns to.
        """
        instance = Instance(user, password, {"token_ttl": token_ttl, **(settings or {})})
        if items:
            instance.generate(items, seed)
        server = StandinHTTPServer((HOST, port), instance, prefix)
        standin = cls(server)
        standin._thread = threading.Thread(
            target=server.serve,
            name=f"nonsistemas-standin:{server.server_address[1]}",
            daemon=True,
        )
        standin._thread.start()
        return standin

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, prefix included: http://127.0.0.1:PORT/ns"""
        return f"http://{HOST}:{self.port}{self._server.prefix}"

    def stop(self) -> None:
        """Stop serving and drop open connections. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            self._server.stop_serving()
            self._thread.join()
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- control operations, identical to StandinClient's ---------------------------

    def generate(self, n: int, seed: int = 1) -> None:
        self._instance.generate(n, seed)

    def load(self, items: Sequence[Mapping[str, Any]]) -> None:
        self._instance.load(items)

    def items(self) -> list[dict[str, Any]]:
        return self._instance.items()

    def edit(
        self,
        changes: Sequence[Mapping[str, Any]],
        *,
        visible_after: float = 0,
        after_page: int | None = None,
    ) -> None:
        self._instance.edit(changes, visible_after=visible_after, after_page=after_page)

    def set_clock_offset(self, seconds: float) -> None:
        self._instance.set_clock_offset(seconds)

    def advance(self, seconds: float) -> None:
        self._instance.advance(seconds)

    def now(self) -> datetime:
        return self._instance.now()

    def configure(self, **settings: Any) -> None:
        self._instance.configure(**settings)

    def add_user(self, usuario: str, clave: str, api_access: bool = True) -> None:
        self._instance.add_user(usuario, clave, api_access)

    def inject(self, fault: Fault) -> None:
        self._instance.inject(fault)

    def clear_faults(self) -> None:
        self._instance.clear_faults()

    def requests(self) -> list[dict[str, Any]]:
        return self._instance.requests()

    def clear_requests(self) -> None:
        self._instance.clear_requests()

    def reset(self) -> None:
        self._instance.reset()
