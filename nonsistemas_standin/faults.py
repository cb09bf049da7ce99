"""Injectable faults: what a real instance, or the proxy in front of it, can do wrong.

A `Fault` matches API requests by endpoint path (without the prefix, or "*" for
any API request). It lets the first `after_requests` matching requests through,
then affects the next `times` matching ones and is discarded.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = frozenset(
    {
        "status",  # the contract's error body for `status` (default 500)
        "html",  # an HTML error page with `status` (default 502), as a proxy sends
        "delay",  # sleep `delay` seconds, then answer normally
        "reset",  # close the TCP connection with RST, no response
        "malformed_json",  # 200 with a body that is not JSON
        "truncated_json",  # the normal response cut in half (Content-Length matches)
        "token_expired",  # 401 token_vencido whatever the token
        "not_nonsistemas",  # 200 HTML page of some other product
    }
)


@dataclass
class Fault:
    kind: str
    path: str = "/api/stock"
    times: int = 1
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    after_requests: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if self.times < 1 or self.after_requests < 0 or self.delay < 0:
            raise ValueError("times must be >= 1, after_requests and delay >= 0")
        if self.path != "*" and not self.path.startswith("/"):
            raise ValueError(f"fault path must start with / or be *: {self.path!r}")

    def matches(self, path: str) -> bool:
        return self.path == "*" or self.path == path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Armed:
    fault: Fault
    to_skip: int
    remaining: int


@dataclass
class FaultQueue:
    """The injected faults, in injection order. Not thread-safe: callers lock."""

    _armed: list[_Armed] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        self._armed.append(_Armed(fault, fault.after_requests, fault.times))

    def clear(self) -> None:
        self._armed.clear()

    def take(self, path: str) -> Fault | None:
        """The fault that affects this request, if any; counts it for every fault.

        Every matching fault sees the request (so each one's `after_requests`
        counts requests, not requests left over by other faults); the first one
        past its skip count affects it.
        """
        chosen: Fault | None = None
        for armed in self._armed:
            if not armed.fault.matches(path):
                continue
            if armed.to_skip > 0:
                armed.to_skip -= 1
            elif chosen is None:
                chosen = armed.fault
                armed.remaining -= 1
        self._armed = [armed for armed in self._armed if armed.remaining > 0]
        return chosen
