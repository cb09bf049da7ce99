"""The stand-in's own clock and the contract's timestamp format.

A real NonSistemas instance keeps its own time, which can be minutes off the
client's. The stand-in reproduces that with an offset over the real UTC time, and
lets tests move it forward (`advance`) to make tokens expire or late commits show
up without sleeping.
"""

import threading
import time
from datetime import datetime, timedelta, timezone

# America/Argentina/Buenos_Aires has had no daylight saving since 2009, so a fixed
# offset reproduces what an instance prints and avoids depending on tzdata.
LOCAL_TZ = timezone(timedelta(hours=-3))
_LOCAL_OFFSET = -3 * 3600
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S-03:00"


class StandinClock:
    """Real UTC time plus a settable offset, in seconds."""

    def __init__(self, offset: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._offset = float(offset)

    @property
    def offset(self) -> float:
        return self._offset

    def set_offset(self, seconds: float) -> None:
        with self._lock:
            self._offset = float(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += float(seconds)

    def epoch(self) -> float:
        """Stand-in now as POSIX seconds (fractional)."""
        return time.time() + self._offset

    def now(self) -> datetime:
        """Stand-in now, aware, in the instance's time zone (-03:00)."""
        return datetime.fromtimestamp(self.epoch(), LOCAL_TZ)


def format_timestamp(epoch: float) -> str:
    """The contract's format: ISO-8601, seconds precision, -03:00 offset."""
    # gmtime + strftime on the shifted instant: half the cost of a datetime, and this
    # runs for every item the first time it is served.
    return time.strftime(_LOCAL_FORMAT, time.gmtime(int(epoch // 1) + _LOCAL_OFFSET))


def format_precise(epoch: float) -> str:
    """Millisecond precision, for the stand-in's own request log (not the API)."""
    return datetime.fromtimestamp(epoch, LOCAL_TZ).isoformat(timespec="milliseconds")


def parse_instant(value: str | datetime) -> float:
    """An ISO-8601 string or datetime as POSIX seconds.

    Accepts an offset or `Z`; a value without an offset is read in the instance's
    time zone, as the contract says `desde` is. Raises ValueError when malformed.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        # No stripping: a `+` sent unencoded in a query string arrives as a space,
        # and a real instance rejects that value rather than guessing.
        moment = datetime.fromisoformat(value)
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.timestamp()
