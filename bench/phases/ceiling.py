"""Phase 0: a bare aiohttp app under the same load process, the yardstick for the rest."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from bench import numbers
from bench.loadproc import ROOT
from bench.phases.common import (
    LOAD_GRACE,
    OTP_TEXT,
    Context,
    progress,
    start_load,
    window_figures,
)
from tests.infra import free_port


async def run_ceiling(ctx: Context) -> dict[str, Any]:
    """Requests/s and latency of `bench.ceiling` at the single-send concurrency, on uvloop
    (the platform's loop, the yardstick) and then on asyncio's own loop, the plain aiohttp
    handler that outside figures usually mean: together they show how fast the machine is
    running during this benchmark."""
    summary = await _measure(ctx, "uvloop")
    plain = await _measure(ctx, "asyncio")
    summary["asyncio_loop"] = {
        key: plain[key] for key in ("requests_per_s", "requests", "latency", "statuses", "errors")
    }
    return summary


async def _measure(ctx: Context, loop: str) -> dict[str, Any]:
    options = ctx.options
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ceiling", "--port", str(port), "--loop", loop, cwd=ROOT
    )
    ctx.monitor.pids["ceiling"] = server.pid
    url = f"http://127.0.0.1:{port}/"
    try:
        await asyncio.to_thread(_wait_answering, url, 20.0)
        progress(
            f"ceiling on {loop}: {options.ceiling_seconds:.0f}s"
            f" at concurrency {options.concurrency}"
        )
        load = await start_load(
            ctx,
            {
                "mode": "closed",
                "url": url,
                # The same headers and body as a single send, so the client's work matches.
                "authorization": "Basic YmVuY2g6Y2VpbGluZw==",
                "wallet_id": "wal_ceiling",
                "message": OTP_TEXT,
                "stream": numbers.CEILING,
                "concurrency": options.concurrency,
                "warmup": min(options.warmup, 2.0),
                "duration": options.ceiling_seconds,
                "expected_status": 200,
            },
        )
        result = await load.result(options.ceiling_seconds + options.warmup + LOAD_GRACE)
    finally:
        server.terminate()
        await server.wait()
    summary: dict[str, Any] = {
        "requests_per_s": result["requests_per_s"],
        "requests": result["requests"],
        **window_figures(result),
    }
    summary["cpu"] = await ctx.monitor.usage_after(
        result["window_start_wall"], result["window_end_wall"]
    )
    return summary


def _wait_answering(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
