"""Closed-loop load: a fixed number of workers, each sending its next request as soon as the
last one is answered, for a warm-up and then a measured window.

Used for the ceiling (a bare aiohttp app) and for single sends, so both figures come from
the same client doing the same work per request: each worker holds one keep-alive
connection of the lean client in `http.py`, so the load takes as little CPU from the
platform it measures as it can.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from bench.load.client import SendBody, Simulator, Tally, headers
from bench.load.http import ConnectionLost, HttpConnection
from bench.numbers import NumberStream
from bench.stats import latency_summary, rate

_WARMUP, _WINDOW, _TAIL = range(3)
_DRAIN_POLL = 0.05
# What a request can fail with short of a reply: connection trouble or the client timeout.
_REQUEST_ERRORS = (ConnectionLost, OSError)


class _Run:
    """Counters the workers update; only completions inside the window are measured."""

    def __init__(self) -> None:
        self.stage = _WARMUP
        self.stopping = False
        self.window = Tally()
        self.total = Tally()
        self.latencies: list[float] = []
        self.accepted = 0  # 202 replies since the start, warm-up and tail included
        self.cost = 0


async def run_closed(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the spec's workers; return the window's figures and, with a simulator, the drain."""
    concurrency: int = spec["concurrency"]
    url: str = spec["url"]
    sent_headers = headers(spec.get("authorization"))
    body = SendBody(spec["wallet_id"], spec["message"], spec.get("priority"))
    numbers = NumberStream(spec["stream"], spec.get("seed"))
    read_cost: bool = spec.get("read_cost", False)
    expected: int = spec.get("expected_status", 202)
    timeout: float = spec.get("timeout", 30.0)
    simulator = Simulator(spec["simulator_url"]) if spec.get("simulator_url") else None
    run = _Run()

    async def worker() -> None:
        connection = HttpConnection(url, sent_headers, timeout)
        perf = time.perf_counter
        while not run.stopping:
            data = body.build(numbers.next())
            started = perf()
            try:
                status, payload = await connection.post(data)
                elapsed = perf() - started
            except _REQUEST_ERRORS as error:
                run.total.error(error)
                if run.stage == _WINDOW:
                    run.window.error(error)
                continue
            if status == expected:
                run.accepted += 1
                if read_cost:
                    run.cost += orjson.loads(payload)["cost"]
            run.total.reply(status, payload, expected)
            if run.stage == _WINDOW:
                run.latencies.append(elapsed)
                run.window.reply(status, payload, expected)
        connection.close()

    result: dict[str, Any] = {"concurrency": concurrency}
    try:
        workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
        await asyncio.sleep(spec["warmup"])
        run.stage = _WINDOW
        window_started = time.perf_counter()
        result["window_start_wall"] = time.time()
        accepted_at_open = run.accepted
        if simulator is not None:
            result["simulator_at_open"] = await _stamped(simulator)
        await asyncio.sleep(max(0.0, spec["duration"] - (time.perf_counter() - window_started)))
        run.stage = _TAIL
        window_s = time.perf_counter() - window_started
        result["window_end_wall"] = time.time()
        result["accepted_at_close"] = run.accepted
        if simulator is not None:
            result["simulator_at_close"] = await _stamped(simulator)
        run.stopping = True
        await asyncio.gather(*workers)
        accepted_in_window = run.window.statuses[expected]
        result.update(
            window_s=round(window_s, 3),
            requests=sum(run.window.statuses.values()) + sum(run.window.errors.values()),
            accepted=accepted_in_window,
            accepted_per_s=rate(accepted_in_window, window_s),
            accepted_in_warmup=accepted_at_open,
            requests_per_s=rate(sum(run.window.statuses.values()), window_s),
            latency=latency_summary(run.latencies),
            window=run.window.as_json(),
            total=run.total.as_json(),
            accepted_total=run.accepted,
            cost_total=run.cost if read_cost else None,
        )
        if simulator is not None:
            result["drain"] = await _drain(simulator, run.accepted, spec["drain_timeout"])
    finally:
        if simulator is not None:
            await simulator.close()
    return result


async def _stamped(simulator: Simulator) -> dict[str, Any]:
    """The simulator's counters and the wall time they were read at."""
    stats = await simulator.stats()
    stats["at"] = time.time()
    return stats


async def _drain(simulator: Simulator, expected: int, timeout: float) -> dict[str, Any]:
    """Poll until the carrier holds every accepted message, or until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await _stamped(simulator)
        if stats["distinct"] >= expected or time.monotonic() >= deadline:
            return {"expected": expected, "drained": stats["distinct"] >= expected, "final": stats}
        await asyncio.sleep(_DRAIN_POLL)
