"""The carrier sandbox numbers end as the contract says, and refunds happen exactly once."""

from __future__ import annotations

from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform

REJECTED, UNDELIVERABLE, THROTTLED, ANY = (
    "+256700000111",
    "+256700000222",
    "+256700000333",
    "+256772345678",
)


async def _statuses(customer: Customer, batch_id: str) -> dict[str, tuple[str, str | None]]:
    reply = await customer.history(batchId=batch_id)
    return {m["recipient"]: (m["status"], m["errorCode"]) for m in reply.body["data"]}


async def test_sandbox_numbers_end_as_the_contract_says(
    platform: Platform, customer: Customer
) -> None:
    reply = await customer.send("Sandbox check", [REJECTED, UNDELIVERABLE, THROTTLED, ANY])
    assert reply.status == 202, reply
    batch = await customer.settled(reply.body["batchId"])
    assert batch["counts"] == {
        "queued": 0,
        "sent": 0,
        "delivered": 2,
        "undelivered": 1,
        "failed": 1,
        "expired": 0,
    }
    statuses = await _statuses(customer, reply.body["batchId"])
    assert statuses[REJECTED] == ("failed", "ESME_RINVDSTADR")
    assert statuses[UNDELIVERABLE][0] == "undelivered"
    assert statuses[UNDELIVERABLE][1].startswith("UNDELIV")
    assert statuses[THROTTLED] == ("delivered", None)
    assert statuses[ANY] == ("delivered", None)
    # The throttled message reached the carrier once, not twice.
    assert len(await platform.simulator_messages(THROTTLED)) == 1
    assert await platform.simulator_messages(REJECTED) == []


async def test_a_rejected_message_is_refunded_once_and_an_undelivered_one_is_not(
    platform: Platform, customer: Customer
) -> None:
    reply = await customer.send("Refund check", [REJECTED, UNDELIVERABLE])
    assert reply.status == 202
    rejected_id = reply.body["messages"][0]["id"]
    await customer.settled(reply.body["batchId"])

    async def refunded() -> bool:
        return await customer.balance() == 10_000 - 35

    await eventually(refunded)
    entries = await platform.rows(
        "SELECT kind, amount, message_id FROM ledger_entries WHERE wallet_id = :w ORDER BY id",
        w=customer.wallet_id,
    )
    assert [(kind, amount) for kind, amount, _ in entries] == [
        ("adjustment", 10_000),
        ("charge", -70),
        ("refund", 35),
    ]
    assert entries[-1][2] == rejected_id
    assert await platform.ledger_mismatches() == []


async def test_a_long_message_to_a_throttled_number_is_delivered_once(
    platform: Platform, customer: Customer
) -> None:
    text = "Part by part, each one throttled once by the carrier. " * 4
    reply = await customer.send(text, THROTTLED)
    assert reply.status == 202 and reply.body["units"] == 2
    await customer.settled(reply.body["batchId"])
    received = [m for m in await platform.simulator_messages(THROTTLED) if m["text"] == text]
    assert len(received) == 1
