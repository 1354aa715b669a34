"""Failure paths lose no message and no shilling: a sender killed mid-batch, the broker
gone at send time, database connections cut, carriers that never answer.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from libs.common.admission import Admission
from libs.common.admission.charge import admit_for_wallet
from libs.common.amqp import Topology
from libs.common.db import transaction
from libs.common.ids import new_id
from services.billing.settings import BillingSettings
from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform, StartPlatform
from tests.platform.proxy import Proxy

BATCH = 2_000


def _recipients(count: int, stem: str) -> list[str]:
    prefixes = ("+25677", "+25670")  # MTN and Airtel
    width = 7 - len(stem)
    return [f"{prefixes[n % 2]}{stem}{n:0{width}d}" for n in range(count)]


@pytest.mark.parametrize(
    ("process", "priority"),
    [
        ("sender", "normal"),
        # The batch takes the priority lane; the bulk sender takes it over, while the
        # receipts of what the dead one sent come to its account when it binds again.
        ("sender-priority", "high"),
    ],
)
async def test_a_sender_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    start_platform: StartPlatform, process: str, priority: str
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
    reply = await customer.send(
        "Kill test: stay with us", _recipients(BATCH, "43"), priority=priority
    )
    assert reply.status == 202, reply
    batch_id = reply.body["batchId"]

    async def partly_submitted() -> int:
        accepted = (await platform.simulator("/stats"))["accepted"]
        return accepted if accepted >= 300 else 0

    submitted_before_kill = await eventually(partly_submitted, timeout=30)
    platform.stack.kill(process)
    assert submitted_before_kill < BATCH
    platform.stack.restart(process)

    try:
        counts = (await customer.settled(batch_id, timeout=60))["counts"]
    except AssertionError:
        stuck = await platform.rows(
            "SELECT status, count(*), min(id), max(id) FROM messages WHERE batch_id = :b"
            " GROUP BY status",
            b=batch_id,
        )
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


async def _behind_proxy(start_platform: StartPlatform, amqp_url: str) -> tuple[Platform, Proxy]:
    """A platform whose every connection to RabbitMQ goes through a proxy we can cut."""
    target = urlsplit(amqp_url)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    credentials = f"{target.username or 'guest'}:{target.password or 'guest'}"
    url = target._replace(netloc=f"{credentials}@127.0.0.1:{proxy.port}").geturl()
    return await start_platform(amqp_url=url), proxy


async def _broker_down(customer: Customer) -> None:
    async def down() -> bool:
        health = await customer.request("GET", "/healthz", auth=False)
        return health.status == 503 and health.body["checks"]["rabbitmq"] != "ok"

    await eventually(down, timeout=15)


async def test_with_the_broker_gone_a_send_fails_cleanly_and_charges_nothing(
    start_platform: StartPlatform, test_servers: Any
) -> None:
    platform, proxy = await _behind_proxy(start_platform, test_servers.amqp_url)
    customer = await platform.customer()
    assert (await customer.send("Before the outage", "0772123456")).status == 202

    await proxy.cut()
    # A send racing the outage either failed before its admission (nothing charged) or
    # was admitted: then its job is published, or waits in the outbox for the broker.
    racing = await customer.send("As the outage starts", "0772123457")
    assert (racing.status, racing.code) in ((202, None), (502, "send_failed")), racing
    await _broker_down(customer)
    # The gateway knows the broker is gone: an OTP queued until it returns would arrive
    # too late to be of use, so the send fails at once and nothing is charged.
    reply = await customer.send("During the outage", "0772123458")
    assert (reply.status, reply.code) == (502, "send_failed"), reply
    admitted = 2 if racing.status == 202 else 1
    assert await customer.balance() == 10_000 - 35 * admitted
    assert (
        await platform.scalar(
            "SELECT count(*) FROM messages WHERE wallet_id = :w", w=customer.wallet_id
        )
        == admitted
    )

    await proxy.restore()

    async def sends_again() -> Any:
        reply = await customer.send("After the outage", "0772123459")
        return reply if reply.status == 202 else None

    after = await eventually(sends_again, timeout=30, interval=1)
    await customer.settled(after.body["batchId"], timeout=60)
    if racing.status == 202:
        counts = (await customer.settled(racing.body["batchId"], timeout=60))["counts"]
        assert counts["delivered"] == 1, counts
    assert await customer.balance() == 10_000 - 35 * (admitted + 1)
    assert await platform.ledger_mismatches() == []
    await proxy.cut()


async def test_work_committed_while_the_broker_is_away_is_sent_when_it_returns(
    start_platform: StartPlatform, test_servers: Any
) -> None:
    platform, proxy = await _behind_proxy(start_platform, test_servers.amqp_url)
    customer = await platform.customer()
    await proxy.cut()
    await _broker_down(customer)
    # An admission committed while no process can reach the broker (by a process that
    # died before it could publish, as here): its staged jobs are never published by that
    # process, so a relay takes them once their claim runs out.
    admission = Admission(
        batch_id=new_id("bat"),
        wallet_id=customer.wallet_id,
        message="Queued through the outage",
        encoding="GSM-7",
        units=1,
        recipients=["+256772700001", "+256701700002"],
        carriers=["mtn", "airtel"],
    )
    async with transaction(platform.sessions) as connection:
        [result] = await admit_for_wallet(
            connection,
            BillingSettings(),
            Topology(platform.config.amqp_namespace),
            customer.wallet_id,
            [admission],
            staged=[],
        )
    assert result.ok
    await asyncio.sleep(2)
    assert await platform.scalar("SELECT count(*) FROM outbox") >= 1
    assert (await customer.batch(admission.batch_id)).body["counts"]["queued"] == 2

    await proxy.restore()
    counts = (await customer.settled(admission.batch_id, timeout=60))["counts"]
    assert counts["delivered"] == 2
    assert await platform.scalar("SELECT count(*) FROM outbox") == 0
    assert await customer.balance() == 10_000 - 70
    assert await platform.ledger_mismatches() == []
    await proxy.cut()


async def test_messages_the_carrier_never_takes_expire_and_are_refunded(
    start_platform: StartPlatform,
) -> None:
    platform = await start_platform(
        extra_env={
            "WESENDALL_VALIDITY_PRIORITY": "PT3S",
            "WESENDALL_CARRIER_LINKS__MTN__RESPONSE_TIMEOUT": "1",
            "WESENDALL_CARRIER_LINKS__AIRTEL__RESPONSE_TIMEOUT": "1",
        }
    )
    customer = await platform.customer()
    platform.stack.kill("carrier-simulator")  # the carrier is unreachable
    reply = await customer.send("Your code is 111222", "0772123456", priority="high")
    assert reply.status == 202
    counts = (await customer.settled(reply.body["batchId"], timeout=30))["counts"]
    assert counts["expired"] == 1

    async def refunded() -> bool:
        return await customer.balance() == 10_000

    await eventually(refunded)
    [message] = (await customer.history()).body["data"]
    assert (message["status"], message["errorCode"]) == ("expired", "validity_expired")
    # When the carrier is back, the expired message is not sent after all.
    platform.stack.restart("carrier-simulator")
    await asyncio.sleep(3)
    assert await platform.simulator_messages("+256772123456") == []
    assert await platform.ledger_mismatches() == []


async def test_database_connections_cut_mid_traffic_lose_nothing(
    platform: Platform,
) -> None:
    customer = await platform.customer(credit=100_000)

    async def cut_connections() -> int:
        cut = 0
        for _ in range(12):
            await asyncio.sleep(0.15)
            cut += await platform.scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name LIKE 'wesendall-%' AND application_name <> 'wesendall-tests'"
            )
        return cut

    async def traffic() -> list[Any]:
        replies = []
        for n in range(20):
            replies.append(await customer.send(f"Steady {n}", _recipients(20, f"5{n:02d}")))
        return replies

    replies, cut = await asyncio.gather(traffic(), cut_connections())
    assert cut > 0
    accepted = [r for r in replies if r.status == 202]
    assert accepted, [r.status for r in replies]
    assert all(r.status in (202, 500) for r in replies), [r.status for r in replies]
    for reply in accepted:
        counts = (await customer.settled(reply.body["batchId"], timeout=60))["counts"]
        assert counts["delivered"] == 20, counts
    # Whatever the outcome of the requests that failed, money and messages agree.
    charged = await platform.scalar(
        "SELECT -COALESCE(sum(amount), 0) FROM ledger_entries WHERE wallet_id = :w"
        " AND kind = 'charge'",
        w=customer.wallet_id,
    )
    messages = await platform.scalar(
        "SELECT count(*) FROM messages WHERE wallet_id = :w", w=customer.wallet_id
    )
    assert charged == messages * 35
    assert await customer.balance() == 100_000 - charged
    assert await platform.ledger_mismatches() == []


@pytest.mark.parametrize(
    ("process", "sends", "recipients"),
    # OTP-sized sends, which the gateway admits itself, and large ones, which billing-bulk
    # admits: whoever dies holding an admission, it is charged once or not at all, and
    # what was charged is sent.
    [("api_gateway", 120, 1), ("billing-bulk", 40, 20)],
)
async def test_the_admitting_process_killed_mid_traffic_never_charges_twice(
    start_platform: StartPlatform, process: str, sends: int, recipients: int
) -> None:
    platform = await start_platform(extra_env={"WESENDALL_RPC_TIMEOUT": "3"})
    customer = await platform.customer(credit=100_000)

    async def kill_and_restart() -> None:
        await asyncio.sleep(0.5)
        platform.stack.kill(process)
        await asyncio.sleep(0.5)
        platform.stack.restart(process)

    async def traffic() -> list[Any]:
        async def one(n: int) -> Any:
            try:
                return await customer.send(f"Busy {n}", _recipients(recipients, f"{n:03d}"))
            except aiohttp.ClientError:
                return None  # the gateway died with the request: its outcome is unknown

        replies = []
        for start in range(0, sends, 8):
            replies += await asyncio.gather(*(one(n) for n in range(start, start + 8)))
        return replies

    replies, _ = await asyncio.gather(traffic(), kill_and_restart())
    answered = [r for r in replies if r is not None]
    accepted = {r.body["batchId"] for r in answered if r.status == 202}
    assert all(r.status in (202, 500, 502) for r in answered), [r.status for r in answered]
    await asyncio.to_thread(platform.stack.wait_healthy, 30)
    batches = await platform.rows(
        "SELECT b.id, count(l.id) FROM batches b LEFT JOIN ledger_entries l"
        " ON l.batch_id = b.id AND l.kind = 'charge' WHERE b.wallet_id = :w GROUP BY b.id",
        w=customer.wallet_id,
    )
    assert {count for _, count in batches} == {1}  # each batch charged exactly once
    assert accepted <= {batch_id for batch_id, _ in batches}
    for batch_id, _ in batches:
        await customer.settled(batch_id, timeout=60)
    assert await customer.balance() == 100_000 - 35 * recipients * len(batches)
    assert await platform.ledger_mismatches() == []


async def test_receipts_that_beat_their_submit_response_are_matched(
    start_platform: StartPlatform,
) -> None:
    # The carrier sends each receipt the moment it accepts the submit. OTP-sized sends go
    # through the priority sender; here it shares the other sender's account at each
    # carrier and holds no receiver binds (the set-up for a carrier that grants one
    # account), so their receipts reach the other sender. The priority sender writes its
    # outcomes only every 1.5 s here, so every receipt comes before its submit is stored:
    # parked, then matched.
    shared_account = {
        f"WESENDALL_CARRIER_LINKS__{carrier.upper()}__{key}": value
        for carrier in ("mtn", "airtel")
        for key, value in (("SYSTEM_ID", carrier), ("RECEIVER_BINDS", "0"))
    }
    platform = await start_platform(
        extra_env={"SIM_RECEIPT_DELAY": "0"},
        service_env={"sender-priority": {"WESENDALL_FLUSH_INTERVAL": "1.5", **shared_account}},
    )
    customer = await platform.customer(credit=100_000)
    replies = await asyncio.gather(
        *(customer.send(f"Racing receipts {n}", _recipients(5, f"6{n:02d}")) for n in range(40))
    )
    assert all(reply.status == 202 for reply in replies)
    for reply in replies:
        counts = (await customer.settled(reply.body["batchId"], timeout=60))["counts"]
        assert counts["delivered"] == 5, counts

    async def parked_and_matched() -> bool:
        log = (platform.logs / "sender.log").read_text()
        return (
            '"receipts_parked"' in log
            and await platform.scalar("SELECT count(*) FROM pending_receipts") == 0
        )

    await eventually(parked_and_matched, timeout=10)
