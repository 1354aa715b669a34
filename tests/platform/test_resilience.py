"""Failure paths lose no message and no shilling: a sender killed mid-batch, the broker
gone at send time, database connections cut, carriers that never answer.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit

from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform, StartPlatform
from tests.platform.proxy import Proxy

BATCH = 2_000


def _recipients(count: int, stem: str) -> list[str]:
    prefixes = ("+25677", "+25670")  # MTN and Airtel
    return [f"{prefixes[n % 2]}{stem}{n:05d}" for n in range(count)]


async def _settled(customer: Customer, batch_id: str, timeout: float = 60) -> dict[str, int]:
    async def final() -> dict[str, int] | None:
        counts = (await customer.batch(batch_id)).body["counts"]
        return counts if counts["queued"] == counts["sent"] == 0 else None

    return await eventually(final, timeout=timeout, interval=0.5)


async def test_a_sender_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    start_platform: StartPlatform,
) -> None:
    platform = await start_platform(
        extra_env={
            # Slow enough that the kill lands in the middle of the batch.
            "WESENDALL_CARRIER_LINKS__MTN__RATE": "150",
            "WESENDALL_CARRIER_LINKS__AIRTEL__RATE": "150",
            "SIM_RECEIPT_DELAY": "0.5",
        }
    )
    customer = await platform.customer(credit=BATCH * 35 + 1_000)
    reply = await customer.send("Kill test: stay with us", _recipients(BATCH, "43"))
    assert reply.status == 202, reply
    batch_id = reply.body["batchId"]

    async def partly_submitted() -> int:
        accepted = (await platform.simulator("/stats"))["accepted"]
        return accepted if accepted >= 300 else 0

    submitted_before_kill = await eventually(partly_submitted, timeout=30)
    platform.stack.kill("sender")
    assert submitted_before_kill < BATCH
    platform.stack.restart("sender")

    try:
        counts = await _settled(customer, batch_id, timeout=60)
    except AssertionError:
        stuck = await platform.rows(
            "SELECT status, count(*), min(id), max(id) FROM messages WHERE batch_id = :b"
            " GROUP BY status", b=batch_id)
        parked = await platform.scalar("SELECT count(*) FROM pending_receipts")
        raise AssertionError(f"not settled: {stuck}; parked receipts: {parked}") from None
    assert counts == {
        "queued": 0,
        "sent": 0,
        "delivered": BATCH,
        "undelivered": 0,
        "failed": 0,
        "expired": 0,
    }
    stats = await platform.simulator("/stats")
    # Every recipient got the text once: messages the dead worker may have sent were
    # recognised by their receipts instead of being submitted again.
    assert stats["duplicates"] == 0, stats
    assert stats["messages"] == BATCH
    assert await customer.balance() == 1_000
    charges = await platform.scalar(
        "SELECT count(*) FROM ledger_entries WHERE batch_id = :b AND kind = 'charge'", b=batch_id
    )
    assert charges == 1
    assert await platform.ledger_mismatches() == []


async def test_with_the_broker_gone_a_send_fails_cleanly_and_charges_nothing(
    start_platform: StartPlatform, test_servers: Any
) -> None:
    target = urlsplit(test_servers.amqp_url)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    url = target._replace(
        netloc=f"{target.username or 'guest'}:{target.password or 'guest'}@127.0.0.1:{proxy.port}"
    ).geturl()
    platform = await start_platform(amqp_url=url)
    customer = await platform.customer()
    assert (await customer.send("Before the outage", "0772123456")).status == 202

    await proxy.cut()
    # A send racing the outage may have been written to a dying connection: its outcome
    # is unknown to the gateway, so it answers internal_error rather than guess.
    racing = await customer.send("As the outage starts", "0772123457")
    assert (racing.status, racing.code) in ((502, "send_failed"), (500, "internal_error"))

    async def broker_down() -> bool:
        health = await customer.request("GET", "/healthz", auth=False)
        return health.status == 503 and health.body["checks"]["rabbitmq"] != "ok"

    await eventually(broker_down, timeout=15)
    reply = await customer.send("During the outage", "0772123458")
    assert (reply.status, reply.code) == (502, "send_failed"), reply
    # Nothing reached billing: no charge, no message for either request.
    assert await customer.balance() == 10_000 - 35
    assert await platform.scalar(
        "SELECT count(*) FROM messages WHERE wallet_id = :w", w=customer.wallet_id
    ) == 1

    await proxy.restore()

    async def sends_again() -> Any:
        reply = await customer.send("After the outage", "0772123459")
        return reply if reply.status == 202 else None

    after = await eventually(sends_again, timeout=30, interval=1)
    await _settled(customer, after.body["batchId"])
    assert await customer.balance() == 10_000 - 70
    assert await platform.ledger_mismatches() == []
    await proxy.cut()
