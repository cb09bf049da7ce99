"""A stand-in for the NonSistemas ERP HTTP API, for tests, demos and benchmarks.

It follows the contract in shared/nonsistemas-api.md: the same paths, fields,
error bodies, number and date formats, paging over live data, its own clock,
token expiry and rate limits, plus a control interface to change its data, move
its clock and inject faults. It imports nothing from the product it serves.

    from nonsistemas_standin import Fault, Standin

    with Standin.start(port=0, items=1000) as s:
        s.inject(Fault("status", status=503, retry_after=5))
        ...
"""

from .control import StandinClient
from .faults import FAULT_KINDS, Fault
from .generation import GENERATION_EPOCH, generated_items
from .standin import Standin

__all__ = [
    "FAULT_KINDS",
    "GENERATION_EPOCH",
    "Fault",
    "Standin",
    "StandinClient",
    "generated_items",
]
