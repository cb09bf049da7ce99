"""`vxm erp sync`'s progress on stderr: a bar on a terminal, plain lines otherwise.

On a terminal, tqdm draws one line redrawn in place: items received of those
the ERP announced, percentage, rate and the estimate of the rest. When stderr
is a file or a pipe (a cron job's log, a deploy script), a bar would be a mess
of carriage returns, so a plain line is written at most every PLAIN_EVERY
seconds. With `--json` neither is used: scripts get the JSON and nothing else.

Both are the run's `progress` callback (called after each page is applied) and
also keep the ERP's announced total on the run (`record_total`), so the panel
shows the progress of an update started here too.
"""

import io
import os
import shutil
import time
from collections.abc import Callable
from typing import Any, TextIO

from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from tqdm import tqdm

from catalog.templatetags.money import thousands
from erp.models import Run
from erp.progress import progress_of, record_total
from erp.sources import FeedStats
from erp.templatetags.erp_tags import duration

# How often a plain line is written when stderr is not a terminal.
PLAIN_EVERY = 5.0  # seconds


class TerminalBar:
    """A tqdm bar on a terminal (stderr)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Any = None

    def __call__(self, run: Run, stats: FeedStats) -> None:
        record_total(run, stats)
        if self.bar is None:
            self.bar = tqdm(
                total=stats.expected,
                desc=_("Actualización #%(id)s") % {"id": run.pk},
                unit=" ítems",
                file=self.stream,
                **_width(self.stream),
                mininterval=0.2,
                bar_format=self._format(stats.expected),
            )
        elif stats.expected is not None and self.bar.total != stats.expected:
            self.bar.total = stats.expected
            self.bar.bar_format = self._format(stats.expected)
        self.bar.set_postfix_str(pages_text(stats.pages), refresh=False)
        self.bar.update(max(0, run.received - self.bar.n))

    @staticmethod
    def _format(total: int | None) -> str:
        if total is None:
            # No total: no percentage nor estimate, only what came and how fast.
            return "{desc}: {n_fmt}{unit} · {rate_fmt} · {elapsed}{postfix}"
        return _(
            "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} · {rate_fmt} · "
            "faltan {remaining}{postfix}"
        )

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _width(stream: TextIO) -> dict[str, Any]:
    """Follow the terminal's size as it changes; but a pseudo-terminal that
    reports 0 x 0 (a fresh `pty`, some CI runners) makes tqdm draw nothing at
    all: there, COLUMNS x LINES, or 80 x 24."""
    try:
        size = os.get_terminal_size(stream.fileno())
        if size.columns > 0 and size.lines > 0:
            return {"dynamic_ncols": True}
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass
    fallback = shutil.get_terminal_size()
    return {"ncols": fallback.columns, "nrows": fallback.lines}


class PlainLines:
    """A plain line every PLAIN_EVERY seconds (and for the first page), for logs."""

    def __init__(self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.write = write
        self.clock = clock
        self.last: float | None = None

    def __call__(self, run: Run, stats: FeedStats) -> None:
        record_total(run, stats)
        now = self.clock()
        if self.last is not None and now - self.last < PLAIN_EVERY:
            return
        self.last = now
        self.write(plain_line(run))

    def finish(self) -> None:
        pass


def pages_text(pages: int) -> str:
    return ngettext("%(pages)s página", "%(pages)s páginas", pages) % {"pages": thousands(pages)}


def plain_line(run: Run) -> str:
    """ "Actualización #7: 4.000 de 20.000 ítems (20 %), 8 páginas, 1.234 ítems/s,
    faltan unos 13 s"."""
    p = progress_of(run)
    if p.total is not None:
        got = _("%(received)s de %(total)s ítems (%(percent)s %%)") % {
            "received": thousands(p.received),
            "total": thousands(p.total),
            "percent": p.percent,
        }
    else:
        got = _("%(received)s ítems") % {"received": thousands(p.received)}
    parts = [got, pages_text(p.pages)]
    if p.rate is not None:
        parts.append(_("%(rate)s ítems/s") % {"rate": thousands(round(p.rate))})
    if p.remaining is not None:
        parts.append(_("faltan unos %(remaining)s") % {"remaining": duration(p.remaining)})
    return _("Actualización #%(id)s: %(parts)s") % {"id": run.pk, "parts": ", ".join(parts)}
