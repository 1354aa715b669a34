"""A campaign in large requests, with a stream of single OTPs sent while it runs.

The OTP stream is open-loop (one send every `interval`, whether or not the last one has
been answered), so a slow API shows up as latency rather than as fewer OTPs. It keeps
going until the carrier simulator holds the whole campaign, so OTPs are measured both
while the campaign is being accepted and while its backlog is being submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import orjson

from bench.load.client import REQUEST_ERRORS, SendBody, Simulator, Tally, headers, new_session
from bench.numbers import CAMPAIGN, OTP, NumberStream
from bench.stats import latency_summary

# OTPs accepted this recently may still be on their way to the carrier; the stream stops
# once everything older has arrived (the exact finish is worked out afterwards).
_OTP_SETTLE = 2.0


class _Campaign:
    def __init__(self) -> None:
        self.tally = Tally()
        self.latencies: list[float] = []
        self.recipients = 0
        self.cost = 0
        self.last_accepted_wall: float | None = None
        self.done = False


class _Otps:
    def __init__(self) -> None:
        self.tally = Tally()
        # (recipient, accept latency s, wall time of the 202) per accepted OTP, in send order.
        self.accepted: list[tuple[str, float, float]] = []
        self.skipped = 0  # ticks with too many OTPs unanswered to send another
        self.in_flight = 0
        self.cost = 0


async def run_campaign(spec: dict[str, Any]) -> dict[str, Any]:
    """Send the campaign with its OTP stream; return both, and the simulator's progress."""
    url: str = spec["url"]
    sent_headers = headers(spec["authorization"])
    batch: int = spec["batch"]
    numbers = NumberStream(CAMPAIGN, spec.get("seed"))
    campaign_body = SendBody(spec["wallet_id"], spec["message"], "normal")
    bodies = [campaign_body.build(numbers.take(batch)) for _ in range(spec["recipients"] // batch)]
    otp_spec: dict[str, Any] | None = spec.get("otp")
    otp_slots = otp_spec["max_in_flight"] if otp_spec else 0
    session = new_session(spec["in_flight"] + otp_slots, spec.get("timeout", 300.0))
    simulator = Simulator(spec["simulator_url"])
    campaign, otps = _Campaign(), _Otps()
    # (wall, distinct messages, submits, receipts the platform acknowledged, receipts pending)
    samples: list[tuple[float, int, int, int, int]] = []

    async def send_batches() -> None:
        while bodies:
            data = bodies.pop()
            started = time.perf_counter()
            try:
                async with session.post(url, data=data, headers=sent_headers) as response:
                    payload = await response.read()
                    campaign.latencies.append(time.perf_counter() - started)
                    status = response.status
            except REQUEST_ERRORS as error:
                campaign.tally.error(error)
                continue
            campaign.tally.reply(status, payload)
            if status == 202:
                reply = orjson.loads(payload)
                campaign.recipients += reply["recipients"]
                campaign.cost += reply["cost"]
                campaign.last_accepted_wall = time.time()

    async def sample() -> dict[str, Any]:
        stats = await simulator.stats()
        samples.append(
            (
                time.time(),
                stats["distinct"],
                stats["submits"],
                stats["receipts_sent"],
                stats["receipts_pending"],
            )
        )
        return stats

    async def watch(stop_otps: asyncio.Event) -> None:
        """Sample the simulator until it holds the campaign and every OTP, or time is up."""
        deadline: float | None = None
        while True:
            await asyncio.sleep(spec["poll_interval"])
            distinct = (await sample())["distinct"]
            if not campaign.done:
                continue
            deadline = deadline or time.monotonic() + spec["drain_timeout"]
            settled = time.time() - _OTP_SETTLE
            older_otps = sum(1 for _, _, at in otps.accepted if at <= settled)
            if distinct >= campaign.recipients + older_otps:
                stop_otps.set()
                if distinct >= campaign.recipients + len(otps.accepted) and not otps.in_flight:
                    return
            if time.monotonic() >= deadline:
                stop_otps.set()
                return

    async def settle_receipts() -> None:
        """Sample on until the platform has acknowledged (stored) every receipt, or time is up."""
        deadline = time.monotonic() + spec["drain_timeout"]
        while time.monotonic() < deadline:
            stats = await sample()
            if stats["receipts_pending"] == 0 and stats["receipts_sent"] >= stats["distinct"]:
                return
            await asyncio.sleep(spec["poll_interval"])

    result: dict[str, Any] = {}
    background: list[asyncio.Future[Any]] = []
    try:
        await simulator.stats()  # the inspection API answers before the clock starts
        stop_otps = asyncio.Event()
        watcher = asyncio.ensure_future(watch(stop_otps))
        background.append(watcher)
        first_request_wall = time.time()
        streaming = None
        if otp_spec:
            streaming = asyncio.ensure_future(
                _otp_stream(session, url, sent_headers, spec, otps, stop_otps)
            )
            background.append(streaming)
        await asyncio.gather(*(send_batches() for _ in range(spec["in_flight"])))
        campaign.done = True
        await watcher
        if streaming is not None:
            await streaming
        await settle_receipts()
        result = {
            "campaign": {
                "requests": len(campaign.latencies) + sum(campaign.tally.errors.values()),
                "batch": batch,
                "in_flight": spec["in_flight"],
                "accepted_recipients": campaign.recipients,
                "cost_total": campaign.cost,
                "first_request_wall": first_request_wall,
                "last_accepted_wall": campaign.last_accepted_wall,
                "latency": latency_summary(campaign.latencies),
                **campaign.tally.as_json(),
            },
            "otp": {
                "accepted": otps.accepted,
                "skipped": otps.skipped,
                "cost_total": otps.cost,
                **otps.tally.as_json(),
            },
            "samples": samples,
        }
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await session.close()
        await simulator.close()
    return result


async def _otp_stream(
    session: aiohttp.ClientSession,
    url: str,
    sent_headers: dict[str, str],
    spec: dict[str, Any],
    otps: _Otps,
    stop: asyncio.Event,
) -> None:
    """One high-priority single send every interval, each to a new number, until `stop`."""
    otp_spec = spec["otp"]
    interval: float = otp_spec["interval"]
    body = SendBody(otp_spec.get("wallet_id", spec["wallet_id"]), otp_spec["message"], "high")
    numbers = NumberStream(OTP, spec.get("seed"))
    sends: set[asyncio.Future[None]] = set()
    # OTPs may be paid from a wallet of their own (`--otp-own-wallet`).
    otp_headers = (
        headers(otp_spec["authorization"]) if "authorization" in otp_spec else sent_headers
    )

    async def send(recipient: str) -> None:
        otps.in_flight += 1
        started = time.perf_counter()
        try:
            async with session.post(url, data=body.build(recipient), headers=otp_headers) as r:
                payload = await r.read()
                elapsed = time.perf_counter() - started
                answered_wall = time.time()
                status = r.status
        except REQUEST_ERRORS as error:
            otps.tally.error(error)
            return
        finally:
            otps.in_flight -= 1
        otps.tally.reply(status, payload)
        if status == 202:
            otps.cost += orjson.loads(payload)["cost"]
            otps.accepted.append((recipient, elapsed, answered_wall))

    next_at = time.monotonic()
    while not stop.is_set():
        if otps.in_flight >= otp_spec["max_in_flight"]:
            otps.skipped += 1
        else:
            task = asyncio.ensure_future(send(numbers.next()))
            sends.add(task)
            task.add_done_callback(sends.discard)
        # A fixed schedule, so a late tick does not push every later one back.
        next_at += interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
    if sends:
        await asyncio.gather(*sends)
