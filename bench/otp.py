"""OTPs sent during the campaign: when each reached the carrier, and what that says.

An OTP's delivery latency is the simulator's `receivedAt` for its recipient minus the
wall time the API's 202 reached the client. Both clocks are this machine's; `receivedAt`
has millisecond resolution, and can precede the 202 when the sender submits the message
before the gateway's reply has been read. Its status latency runs from the same 202 to the
platform storing its final status from the carrier's receipt (the simulator's receipt
delay included): when the customer's status webhook could leave.
"""

from __future__ import annotations

import asyncio
import bisect
from datetime import datetime
from typing import Any

from bench.platform import BenchPlatform
from bench.stats import latency_summary

_LOOKUPS_AT_ONCE = 16


async def lookup(platform: BenchPlatform, recipients: list[str]) -> dict[str, float]:
    """When the carrier received each recipient's first message (Unix time), if it did."""
    gate = asyncio.Semaphore(_LOOKUPS_AT_ONCE)
    received: dict[str, float] = {}

    async def one(recipient: str) -> None:
        async with gate:
            found = await platform.simulator("GET", "/messages", recipient=recipient, limit=1)
        if found["data"]:
            stamp = found["data"][0]["receivedAt"]
            received[recipient] = datetime.fromisoformat(stamp).timestamp()

    await asyncio.gather(*(one(r) for r in recipients))
    return received


def campaign_arrived(sample: list[float], otp_arrivals: list[float]) -> int:
    """Campaign messages the carrier held at a (wall time, distinct, submits) sample.

    The simulator counts OTPs and campaign messages together; the OTPs that had arrived by
    then are known from their `receivedAt`, so they are subtracted.
    """
    at, distinct = sample[0], sample[1]
    return int(distinct) - bisect.bisect_right(otp_arrivals, at)


def campaign_finished(
    samples: list[list[float]], otp_arrivals: list[float], campaign: int
) -> float | None:
    """The first sample time at which the carrier held the whole campaign."""
    for sample in samples:
        if campaign_arrived(sample, otp_arrivals) >= campaign:
            return sample[0]
    return None


def receipts_stored(samples: list[list[float]]) -> float | None:
    """The first sample time at which the platform had acknowledged every receipt the carrier
    owed it (it acknowledges a `deliver_sm` only once the receipt is stored)."""
    for wall, distinct, _, acknowledged, pending in samples:
        if pending == 0 and acknowledged >= distinct > 0:
            return wall
    return None


def receipts_unstored_at(samples: list[list[float]], when: float | None) -> int | None:
    """Messages at the carrier whose receipts were not yet stored at `when`."""
    for wall, distinct, _, acknowledged, _ in samples:
        if when is not None and wall >= when:
            return int(distinct - acknowledged)
    return None


def peak_rate(samples: list[list[float]], span: float = 1.0) -> float | None:
    """The highest submit_sm/s the carrier saw over any stretch of at least `span` seconds."""
    best: float | None = None
    start = 0
    for end in range(len(samples)):
        while start < end and samples[end][0] - samples[start + 1][0] >= span:
            start += 1
        elapsed = samples[end][0] - samples[start][0]
        if elapsed >= span:
            per_s = (samples[end][2] - samples[start][2]) / elapsed
            best = per_s if best is None else max(best, per_s)
    return None if best is None else round(best, 1)


def summarise(
    sent: dict[str, Any],
    received: dict[str, float],
    settled: dict[str, float],
    accepting_until: float | None,
    finished_at: float | None,
) -> dict[str, Any]:
    """Accept and carrier latencies of the OTPs sent while the campaign was under way."""
    during, after = [], 0
    for recipient, seconds, answered in sent["accepted"]:
        if finished_at is not None and answered > finished_at:
            after += 1
        else:
            during.append((recipient, seconds, answered))
    missing = [r for r, _, _ in during if r not in received]

    def since_202(seen: dict[str, float], rows: list[tuple[str, float, float]]) -> dict[str, Any]:
        """From each OTP's 202 to the time in `seen` (at the carrier, or status stored)."""
        return latency_summary([seen[r] - at for r, _, at in rows if r in seen])

    accepting = [row for row in during if accepting_until and row[2] <= accepting_until]
    draining = [row for row in during if not accepting_until or row[2] > accepting_until]

    def accept_of(rows: list[tuple[str, float, float]]) -> dict[str, Any]:
        return latency_summary([seconds for _, seconds, _ in rows])

    accept = accept_of(during)
    deliver = since_202(received, during)
    return {
        "measured": deliver["count"],
        "sent": sum(sent["statuses"].values()) + sum(sent["errors"].values()),
        "accepted": len(during),
        "not_at_carrier": len(missing),
        "status_not_stored": sum(1 for r, _, _ in during if r not in settled),
        "after_campaign": after,
        "skipped_ticks": sent["skipped"],
        "carrier_p50_ms": deliver["p50_ms"],
        "carrier_p99_ms": deliver["p99_ms"],
        "carrier_max_ms": deliver["max_ms"],
        "accept_p50_ms": accept["p50_ms"],
        "accept_p99_ms": accept["p99_ms"],
        "accept_max_ms": accept["max_ms"],
        "carrier_latency": deliver,
        "accept_latency": accept,
        "carrier_latency_while_accepting": since_202(received, accepting),
        "carrier_latency_while_draining": since_202(received, draining),
        "status_latency": since_202(settled, during),
        "status_latency_while_accepting": since_202(settled, accepting),
        "status_latency_while_draining": since_202(settled, draining),
        "accept_latency_while_accepting": accept_of(accepting),
        "accept_latency_while_draining": accept_of(draining),
        "statuses": sent["statuses"],
        "errors": sent["errors"],
        "error_samples": sent["samples"],
    }
