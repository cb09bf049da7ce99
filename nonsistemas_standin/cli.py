"""`nonsistemas-standin`: run a stand-in until SIGINT or SIGTERM.

    NONSISTEMAS_STANDIN_PASSWORD=P nonsistemas-standin --port 8765 --items 300000 --seed 1

It binds 127.0.0.1 only, prints one line
"NonSistemas stand-in listening on URL (N items, user U)" and serves. Drive it
with `StandinClient(URL)` (see control.py for the HTTP control endpoints).

The API user's password comes from NONSISTEMAS_STANDIN_PASSWORD: a process's
command line is visible to every user of the machine (`ps`), its environment
only to its owner. `--password` still works, for throwaway test passwords only.
"""

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from .standin import Standin

LEGACY_VERSION = "4.1.0"  # an instance older than 4.2, which sends JSON numbers
PASSWORD_ENV = "NONSISTEMAS_STANDIN_PASSWORD"
DEFAULT_PASSWORD = "s3cret"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nonsistemas-standin",
        description="A stand-in for the NonSistemas ERP API, on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--items", type=int, default=0, help="generate N items")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated catalog")
    parser.add_argument("--user", default="api-ventas", help="the API user")
    parser.add_argument(
        "--password",
        help=f"the API user's password; UNSAFE, other users see it in `ps`: set {PASSWORD_ENV} "
        f"instead (default: {DEFAULT_PASSWORD!r})",
    )
    parser.add_argument("--prefix", default="", help="path prefix of the API, e.g. /ns")
    parser.add_argument("--token-ttl", type=int, default=1800, help="token lifetime, seconds")
    parser.add_argument(
        "--clock-offset", type=float, default=0.0, help="seconds the instance's clock is off"
    )
    parser.add_argument(
        "--legacy",
        action="store_true",
        help=f"behave as version {LEGACY_VERSION}: numbers as JSON numbers, no moneda",
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        help="JSON file with the items to load (a list, or {'items': [...]})",
    )
    return parser


def _read_catalog(parser: argparse.ArgumentParser, path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        parser.error(f"cannot read --catalog {path}: {error}")
    if isinstance(data, dict):
        data = data.get("items")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        parser.error(f"--catalog {path}: expected a list of items or {{'items': [...]}}")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.catalog is not None and args.items:
        parser.error("--items and --catalog exclude each other")
    catalog = _read_catalog(parser, args.catalog) if args.catalog is not None else None
    password = args.password or os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD
    settings: dict[str, Any] = {}
    if args.legacy:
        settings = {"legacy_numbers": True, "version": LEGACY_VERSION}

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        standin = Standin.start(
            port=args.port,
            user=args.user,
            password=password,
            items=args.items,
            seed=args.seed,
            prefix=args.prefix,
            token_ttl=args.token_ttl,
            settings=settings,
        )
    except (OSError, ValueError, TypeError) as error:
        print(f"nonsistemas-standin: cannot start: {error}", file=sys.stderr)
        return 1
    with standin:
        if catalog is not None:
            try:
                standin.load(catalog)
            except ValueError as error:
                print(f"nonsistemas-standin: --catalog {args.catalog}: {error}", file=sys.stderr)
                return 1
        standin.set_clock_offset(args.clock_offset)
        count = len(catalog) if catalog is not None else args.items
        print(
            f"NonSistemas stand-in listening on {standin.url} ({count} items, user {args.user})",
            flush=True,
        )
        # A timed wait, so that the main thread regularly runs the signal handlers.
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
