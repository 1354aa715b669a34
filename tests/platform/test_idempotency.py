"""Idempotency-Key on POSTs: one outcome per key and body, scoped to the API key."""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import text

from tests.platform.client import Customer
from tests.platform.conftest import Platform, StartPlatform


def _key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": f"test-{name}-{os.urandom(4).hex()}"}


async def test_a_retried_send_returns_the_first_response_and_charges_once(
    platform: Platform, customer: Customer
) -> None:
    headers = _key("retry")
    first = await customer.send("Pay once", "0772123456", headers=headers)
    again = await customer.send("Pay once", "0772123456", headers=headers)
    assert first.status == again.status == 202
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await customer.balance() == 10_000 - 35
    assert (
        await platform.scalar(
            "SELECT count(*) FROM batches WHERE wallet_id = :w", w=customer.wallet_id
        )
        == 1
    )


async def test_the_same_key_with_another_body_is_a_mismatch(customer: Customer) -> None:
    headers = _key("mismatch")
    assert (await customer.send("One", "0772123456", headers=headers)).status == 202
    reply = await customer.send("Two", "0772123456", headers=headers)
    assert (reply.status, reply.code) == (422, "idempotency_mismatch")
    assert await customer.balance() == 10_000 - 35


async def test_refusals_are_replayed_too(platform: Platform) -> None:
    customer = await platform.customer(credit=10)
    headers = _key("refusal")
    first = await customer.send("Too dear", "0772123456", headers=headers)
    again = await customer.send("Too dear", "0772123456", headers=headers)
    assert first.code == again.code == "insufficient_balance"


async def test_keys_belong_to_one_api_key(platform: Platform, customer: Customer) -> None:
    other = await platform.customer()
    headers = _key("scoped")
    mine = await customer.send("Mine", "0772123456", headers=headers)
    theirs = await other.send("Theirs", "0772123456", headers=headers)
    assert mine.status == theirs.status == 202
    assert mine.body["batchId"] != theirs.body["batchId"]


async def test_a_key_still_in_flight_is_a_conflict(platform: Platform, customer: Customer) -> None:
    headers = _key("in-flight")
    # Another transaction holds the wallet's row: the first request's admission waits.
    async with platform.engine.connect() as connection, connection.begin():
        await connection.execute(
            text("SELECT 1 FROM wallets WHERE id = :w FOR UPDATE"), {"w": customer.wallet_id}
        )
        first = asyncio.create_task(customer.send("Slow", "0772123456", headers=headers))
        await asyncio.sleep(0.5)
        second = await customer.send("Slow", "0772123456", headers=headers)
        assert (second.status, second.code) == (409, "idempotency_conflict")
        assert not first.done()
    assert (await first).status == 202
    assert await customer.balance() == 10_000 - 35


async def test_a_retry_after_a_timeout_neither_loses_nor_doubles_the_send(
    start_platform: StartPlatform,
) -> None:
    platform = await start_platform(extra_env={"WESENDALL_RPC_TIMEOUT": "1.5"})
    customer = await platform.customer()
    headers = _key("timeout")
    # A send large enough for billing-bulk to admit it, over RPC: the gateway's wait can
    # run out before billing answers.
    recipients = [f"+2567721234{n:02d}" for n in range(11)]
    with platform.frozen("billing-bulk"):
        timed_out = await customer.send("Unknown outcome", recipients, headers=headers)
    assert (timed_out.status, timed_out.code) == (500, "internal_error")
    # Billing, back, finds the request past its deadline and admits nothing.
    retry = await customer.send("Unknown outcome", recipients, headers=headers)
    assert retry.status == 202, retry
    assert await customer.balance() == 10_000 - 35 * len(recipients)
    assert await platform.ledger_mismatches() == []


async def test_creating_a_group_twice_with_one_key_creates_one_group(customer: Customer) -> None:
    headers = _key("group")
    body = {"walletId": customer.wallet_id, "title": "Retried"}
    first = await customer.request("POST", "/api/v1/groups", json=body, headers=headers)
    again = await customer.request("POST", "/api/v1/groups", json=body, headers=headers)
    assert first.status == again.status == 201
    assert again.body == first.body
    listed = await customer.request(
        "GET", "/api/v1/groups", params={"walletId": customer.wallet_id}
    )
    assert [g["id"] for g in listed.body["data"]] == [first.body["id"]]
    contacts = {"walletId": customer.wallet_id, "contacts": [{"phone": "0772123456"}]}
    path = f"/api/v1/groups/{first.body['id']}/contacts"
    added = await customer.request("POST", path, json=contacts, headers=_key("contacts-1"))
    key = _key("contacts-2")
    once = await customer.request("POST", path, json=contacts, headers=key)
    twice = await customer.request("POST", path, json=contacts, headers=key)
    assert added.body == {"added": 1, "skipped": 0, "contactCount": 1}
    assert once.body == twice.body == {"added": 0, "skipped": 1, "contactCount": 1}
