"""`python -m bench.load`: run the load described by the JSON spec on stdin.

The spec's `mode` is `closed` (fixed concurrency for a window; see `closed.py`) or
`campaign` (large requests with an OTP stream; see `campaign.py`). Credentials travel on
stdin rather than the command line, where any process listing would show them. The
results are printed as one JSON object on stdout; nothing else is written there.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from bench.load.campaign import run_campaign
from bench.load.closed import run_closed

MODES: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]] = {
    "closed": run_closed,
    "campaign": run_campaign,
}


def main() -> None:
    """Read the spec, run it on uvloop when available, print the results."""
    spec: dict[str, Any] = orjson.loads(sys.stdin.buffer.read())
    run = MODES[spec["mode"]]
    result: dict[str, Any]
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
