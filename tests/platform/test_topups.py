"""Mobile Money top-ups end to end: gateway, billing, the provider simulator and callbacks."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from libs.common.events import decode_events
from libs.common.mobile_money import MobileMoneySettings, callback_token
from tests.platform.client import Customer, Reply, eventually
from tests.platform.conftest import Platform

MTN_PAYER, AIRTEL_PAYER = "+256772123456", "+256752123456"
DECLINES, NEVER_ANSWERS = "+256700000999", "+256700000888"


async def _final(customer: Customer, deposit_id: str, timeout: float = 20) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        reply = await customer.deposit(deposit_id)
        assert reply.status == 200, reply
        return reply.body if reply.body["status"] != "pending" else None

    return await eventually(ended, timeout=timeout)


async def _credits(platform: Platform, deposit_id: str) -> int:
    return int(
        await platform.scalar(
            "SELECT count(*) FROM ledger_entries WHERE kind = 'deposit' AND reference = :d",
            d=deposit_id,
        )
    )


async def _sim_requests(platform: Platform, **params: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in params.items()).replace("+", "%2B")
    return (await platform.mobile_money("GET", f"/_sim/requests?{query}"))["data"]


async def _sim_requests_for(platform: Platform, deposit_id: str) -> list[dict[str, Any]]:
    """What the provider simulator received for the deposit (by the reference we gave it)."""
    provider, reference = (
        await platform.rows(
            "SELECT provider, provider_reference FROM deposits WHERE id = :d", d=deposit_id
        )
    )[0]
    return await _sim_requests(platform, provider=provider, reference=reference)


async def _started(customer: Customer, amount: int, phone: str, **extra: Any) -> dict[str, Any]:
    reply = await customer.topup(amount, phone, **extra)
    assert reply.status == 202, reply
    return dict(reply.body)


@pytest.fixture
async def sim_config(platform: Platform) -> AsyncIterator[None]:
    """Tests that change the simulator's behaviour get it back as it was."""
    before = await platform.mobile_money("GET", "/_sim/config")
    yield
    await platform.mobile_money("POST", "/_sim/config", before)


async def test_an_mtn_topup_is_credited_once_although_the_callback_comes_twice(
    platform: Platform, customer: Customer
) -> None:
    opening = await customer.balance()
    started = await _started(customer, 5000, "0772123456", description="March credit")
    assert started["status"] == "pending"
    assert started["provider"] == "mtn"
    assert started["phone_number"] == MTN_PAYER
    assert started["amount"] == 5000 and started["currency"] == "UGX"
    assert started["depositId"].startswith("dep_")
    deposit = await _final(customer, started["depositId"])
    assert deposit["status"] == "successful"
    assert deposit["providerTransactionId"]
    assert await customer.balance() == opening + 5000
    assert await _credits(platform, started["depositId"]) == 1
    (request,) = await _sim_requests_for(platform, started["depositId"])
    assert request["amount"] in ("5000", 5000)

    async def both_callbacks_in() -> bool:
        (seen,) = await _sim_requests_for(platform, started["depositId"])
        return int(seen["callbacksSent"]) == 2

    await eventually(both_callbacks_in)
    await asyncio.sleep(0.5)  # let the second callback's status check run to its end
    assert await _credits(platform, started["depositId"]) == 1
    assert await customer.balance() == opening + 5000


async def test_an_airtel_topup_with_signed_callbacks_is_credited_once(
    platform: Platform, customer: Customer
) -> None:
    opening = await customer.balance()
    started = await _started(customer, 750, "256752123456")
    assert started["provider"] == "airtel"
    assert started["phone_number"] == AIRTEL_PAYER
    deposit = await _final(customer, started["depositId"])
    assert deposit["status"] == "successful"
    assert await customer.balance() == opening + 750
    reference = await platform.scalar(
        "SELECT provider_reference FROM deposits WHERE id = :d", d=started["depositId"]
    )
    (request,) = await _sim_requests(platform, provider="airtel", reference=reference)
    assert request["msisdn"] == AIRTEL_PAYER
    assert await _credits(platform, started["depositId"]) == 1


@pytest.mark.parametrize(
    "written", ["+256772123499", "256772123499", "0772123499", "0772 123 499", "+256 (772) 123-499"]
)
async def test_every_written_form_of_the_payer_is_normalised(
    customer: Customer, written: str
) -> None:
    started = await _started(customer, 500, written)
    assert started["phone_number"] == "+256772123499"
    assert started["provider"] == "mtn"


@pytest.mark.parametrize(
    ("phone", "provider"),
    [
        ("0772000001", "mtn"),
        ("0782000001", "mtn"),
        ("0762000001", "mtn"),
        ("0702000001", "airtel"),
        ("0752000001", "airtel"),
        ("0742000001", "airtel"),
    ],
)
async def test_the_prefix_chooses_the_provider(
    customer: Customer, phone: str, provider: str
) -> None:
    assert (await _started(customer, 500, phone))["provider"] == provider


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("0712000001", "no_provider"),  # UTL
        ("0726000001", "no_provider"),  # Lycamobile
        ("0414123456", "fixed_line"),
        ("0799000001", "unknown_range"),
        ("+254712345678", "not_ugandan"),
        ("07720", "malformed"),
    ],
)
async def test_a_number_that_cannot_pay_is_refused_and_nothing_is_started(
    platform: Platform, customer: Customer, phone: str, reason: str
) -> None:
    reply = await customer.topup(5000, phone)
    assert reply.status == 422, reply
    assert reply.code == "validation_failed"
    (detail,) = reply.body["error"]["details"]
    assert detail["field"] == "phone_number"
    assert detail["reason"] == reason
    assert await _deposits_of(platform, customer) == 0


async def _deposits_of(platform: Platform, customer: Customer) -> int:
    return int(
        await platform.scalar(
            "SELECT count(*) FROM deposits WHERE wallet_id = :w", w=customer.wallet_id
        )
    )


@pytest.mark.parametrize("amount", [499, 10_000_001, 0, -500, 500.5, 5000.0, "5000", True, None])
async def test_an_amount_out_of_bounds_or_not_an_integer_is_refused(
    platform: Platform, customer: Customer, amount: Any
) -> None:
    reply = await customer.topup(amount, MTN_PAYER)
    assert reply.status == 422, reply
    assert reply.code == "validation_failed"
    assert reply.body["error"]["details"][0]["field"] == "amount"
    assert await _deposits_of(platform, customer) == 0


async def test_the_amount_bounds_are_inclusive(customer: Customer) -> None:
    assert (await customer.topup(500, MTN_PAYER)).status == 202
    assert (await customer.topup(10_000_000, MTN_PAYER)).status == 202


async def test_missing_fields_and_bad_json_are_refused(
    platform: Platform, customer: Customer
) -> None:
    reply = await customer.request(
        "POST", "/api/v1/account/topup", json={"walletId": customer.wallet_id}
    )
    assert reply.status == 422
    fields = {d["field"] for d in reply.body["error"]["details"]}
    assert fields == {"amount", "phone_number"}
    reply = await customer.request("POST", "/api/v1/account/topup", data=b"{not json")
    assert reply.status == 422 and reply.code == "validation_failed"
    assert await _deposits_of(platform, customer) == 0


async def test_a_declined_payment_fails_and_credits_nothing(
    platform: Platform, customer: Customer
) -> None:
    opening = await customer.balance()
    started = await _started(customer, 5000, DECLINES)
    deposit = await _final(customer, started["depositId"])
    assert deposit["status"] == "failed"
    assert deposit["failureReason"]
    assert await customer.balance() == opening
    assert await _credits(platform, started["depositId"]) == 0


async def test_insufficient_funds_at_mtn_fails_the_deposit(
    platform: Platform, customer: Customer
) -> None:
    payer = "+256772000555"
    await platform.mobile_money("PUT", f"/_sim/payers/{payer}", {"behaviour": "insufficient_funds"})
    try:
        started = await _started(customer, 5000, payer)
        deposit = await _final(customer, started["depositId"])
    finally:
        await platform.mobile_money("DELETE", f"/_sim/payers/{payer}")
    assert deposit["status"] == "failed"
    assert deposit["failureReason"] == "NOT_ENOUGH_FUNDS"


async def test_a_payer_who_never_answers_leaves_the_deposit_pending_then_expired(
    platform: Platform, customer: Customer
) -> None:
    opening = await customer.balance()
    started = await _started(customer, 5000, NEVER_ANSWERS)
    await asyncio.sleep(2)
    assert (await customer.deposit(started["depositId"])).body["status"] == "pending"
    deposit = await _final(customer, started["depositId"], timeout=30)
    assert deposit["status"] == "expired"
    assert deposit["failureReason"] == "not_approved"
    assert await customer.balance() == opening
    (request,) = await _sim_requests(platform, provider="airtel", msisdn=NEVER_ANSWERS)
    assert int(request["statusQueries"]) >= 1  # the reconciler asked before expiring it


async def test_without_callbacks_the_reconciler_credits_the_deposit(
    platform: Platform, customer: Customer, sim_config: None
) -> None:
    await platform.mobile_money("POST", "/_sim/config", {"drop_callbacks": True})
    opening = await customer.balance()
    mtn = await _started(customer, 1000, "0772123400")
    airtel = await _started(customer, 2000, "0702123400")
    for started in (mtn, airtel):
        assert (await _final(customer, started["depositId"]))["status"] == "successful"
        assert await _credits(platform, started["depositId"]) == 1
    assert await customer.balance() == opening + 3000
    (request,) = await _sim_requests_for(platform, mtn["depositId"])
    assert int(request["callbacksSent"]) == 0


async def test_a_request_the_provider_failed_to_take_is_sent_again_under_its_reference(
    platform: Platform, customer: Customer, sim_config: None
) -> None:
    await platform.mobile_money("POST", "/_sim/config", {"fail_next_requests": 1})
    started = await _started(customer, 1500, "0772123401")
    assert started["status"] == "pending"
    assert (await _final(customer, started["depositId"]))["status"] == "successful"
    assert await _credits(platform, started["depositId"]) == 1


async def test_a_request_accepted_without_an_answer_is_not_sent_twice(
    platform: Platform, customer: Customer, sim_config: None
) -> None:
    await platform.mobile_money("POST", "/_sim/config", {"accept_then_fail_response": 1})
    opening = await customer.balance()
    started = await _started(customer, 2500, "0772123402")
    assert (await _final(customer, started["depositId"]))["status"] == "successful"
    requests = await _sim_requests_for(platform, started["depositId"])
    assert len(requests) == 1
    assert await customer.balance() == opening + 2500


def _mtn_callback_path(deposit_id: str, token: str | None = None) -> str:
    token = token or callback_token(MobileMoneySettings().callback_secret, deposit_id)
    return f"/callbacks/mtn/{deposit_id}/{token}"


async def test_a_callback_storm_racing_the_reconciler_credits_each_deposit_once(
    platform: Platform, customer: Customer
) -> None:
    opening = await customer.balance()
    started = [await _started(customer, 600 + i, f"07721235{i:02d}") for i in range(5)]
    success = {"status": "SUCCESSFUL", "amount": "999999", "currency": "UGX"}

    async def storm(deposit_id: str) -> list[Reply]:
        path = _mtn_callback_path(deposit_id)
        return await asyncio.gather(
            *(
                customer.request(method, path, json=success, auth=False)
                for method in ("PUT", "POST")
                for _ in range(10)
            )
        )

    replies = await asyncio.gather(*(storm(s["depositId"]) for s in started))
    assert all(r.status == 200 for group in replies for r in group)
    for s in started:
        assert (await _final(customer, s["depositId"]))["status"] == "successful"
    await asyncio.sleep(1.0)
    for s in started:
        assert await _credits(platform, s["depositId"]) == 1
    # The callbacks' claimed amount was ignored: each is credited what the provider collected.
    assert await customer.balance() == opening + sum(600 + i for i in range(5))


async def test_forged_and_malformed_callbacks_change_nothing(
    platform: Platform, customer: Customer
) -> None:
    opening = await customer.balance()
    silent_mtn_payer = "+256772000888"
    await platform.mobile_money("PUT", f"/_sim/payers/{silent_mtn_payer}", {"behaviour": "never"})
    started = await _started(customer, 5000, silent_mtn_payer)
    deposit_id = started["depositId"]
    success = {"status": "SUCCESSFUL", "amount": "5000", "currency": "UGX"}
    other = await platform.customer()
    foreign = await _started(other, 500, MTN_PAYER)

    wrong_token = await customer.request(
        "PUT", _mtn_callback_path(deposit_id, "A" * 24), json=success, auth=False
    )
    assert wrong_token.status == 404 and wrong_token.code == "not_found"
    swapped = await customer.request(
        "PUT",
        _mtn_callback_path(
            deposit_id, callback_token(MobileMoneySettings().callback_secret, foreign["depositId"])
        ),
        json=success,
        auth=False,
    )
    assert swapped.status == 404
    not_json = await customer.request(
        "PUT", _mtn_callback_path(deposit_id), data=b"<xml/>", auth=False
    )
    assert not_json.status == 422 and not_json.code == "validation_failed"
    too_big = await customer.request(
        "PUT", _mtn_callback_path(deposit_id), data=b'{"x":"' + b"a" * 70_000 + b'"}', auth=False
    )
    assert too_big.status == 422

    airtel = await _started(customer, 5000, NEVER_ANSWERS)
    reference = await platform.scalar(
        "SELECT provider_reference FROM deposits WHERE id = :d", d=airtel["depositId"]
    )
    transaction = {"id": reference, "message": "Paid", "status_code": "TS", "airtel_money_id": "X1"}
    unsigned = await customer.request(
        "POST", "/callbacks/airtel", json={"transaction": transaction}, auth=False
    )
    assert unsigned.status == 401 and unsigned.code == "invalid_signature"
    badly_signed = await customer.request(
        "POST",
        "/callbacks/airtel",
        json={"transaction": transaction, "hash": "c2lnbmVk"},
        auth=False,
    )
    assert badly_signed.status == 401 and badly_signed.code == "invalid_signature"
    no_transaction = await customer.request(
        "POST", "/callbacks/airtel", json={"hash": "x"}, auth=False
    )
    assert no_transaction.status == 422

    # A callback with a valid token but a false claim: billing asks the provider, which
    # says the payer has not approved, so nothing is credited.
    believed = await customer.request(
        "PUT", _mtn_callback_path(deposit_id), json=success, auth=False
    )
    assert believed.status == 200
    await asyncio.sleep(1.5)
    assert (await customer.deposit(deposit_id)).body["status"] == "pending"
    assert await customer.balance() == opening
    assert await _credits(platform, deposit_id) == 0
    await platform.mobile_money("DELETE", f"/_sim/payers/{silent_mtn_payer}")


async def test_a_deposit_is_read_only_through_its_own_wallet(
    platform: Platform, customer: Customer
) -> None:
    started = await _started(customer, 500, MTN_PAYER)
    other = await platform.customer()
    reply = await other.deposit(started["depositId"])
    assert reply.status == 404 and reply.code == "not_found"
    reply = await customer.request(
        "GET",
        f"/api/v1/account/topup/{started['depositId']}",
        params={"walletId": other.wallet_id},
    )
    assert reply.status == 403 and reply.code == "wallet_forbidden"
    reply = await customer.deposit("dep_unknown")
    assert reply.status == 404 and reply.code == "not_found"
    reply = await customer.request(
        "POST",
        "/api/v1/account/topup",
        json={"walletId": other.wallet_id, "amount": 500, "phone_number": MTN_PAYER},
    )
    assert reply.status == 403 and reply.code == "wallet_forbidden"
    assert await _deposits_of(platform, other) == 0


async def test_a_topup_retried_with_its_idempotency_key_starts_one_payment(
    platform: Platform, customer: Customer
) -> None:
    headers = {"Idempotency-Key": "topup-retry-1"}
    first = await customer.topup(800, "0772123410", headers=headers)
    again = await customer.topup(800, "0772123410", headers=headers)
    assert first.status == again.status == 202
    assert again.body["depositId"] == first.body["depositId"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    changed = await customer.topup(900, "0772123410", headers=headers)
    assert changed.status == 422 and changed.code == "idempotency_mismatch"
    assert await _deposits_of(platform, customer) == 1
    requests = await _sim_requests_for(platform, first.body["depositId"])
    assert len(requests) == 1


async def test_deposit_outcomes_are_published_as_events(
    platform: Platform, customer: Customer
) -> None:
    connection = await aio_pika.connect(platform.config.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        exchange = f"{platform.config.amqp_namespace}events"
        await queue.bind(exchange, "deposit.*")
        paid = await _started(customer, 700, "0772123420")
        declined = await _started(customer, 700, DECLINES)
        for s in (paid, declined):
            await _final(customer, s["depositId"])
        seen: dict[str, Any] = {}

        async def both() -> bool:
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                for event in decode_events(message.body):
                    seen[event.data["depositId"]] = event
            return paid["depositId"] in seen and declined["depositId"] in seen

        await eventually(both)
    finally:
        await connection.close()
    succeeded, failed = seen[paid["depositId"]], seen[declined["depositId"]]
    assert succeeded.type == "deposit.succeeded"
    assert (
        succeeded.data["status"] == "successful"
        and succeeded.data["walletId"] == customer.wallet_id
    )
    assert succeeded.data["balance"] == await customer.balance()
    assert failed.type == "deposit.failed" and failed.data["status"] == "failed"


async def test_the_statement_lists_every_entry_with_its_running_balance(
    platform: Platform, customer: Customer
) -> None:
    started = await _started(customer, 1000, "0772123430")
    await _final(customer, started["depositId"])
    sent = await customer.send("Statement check", ["+256772123431", "+256700000111"])
    assert sent.status == 202

    async def refunded() -> Reply | None:
        reply = await customer.transactions()
        return reply if any(t["type"] == "refund" for t in reply.body["data"]) else None

    statement = (await eventually(refunded)).body
    entries = statement["data"]
    assert statement["total"] == len(entries) == 4  # opening credit, deposit, charge, refund
    assert [t["type"] for t in entries] == ["refund", "charge", "deposit", "adjustment"]
    assert entries[0]["balanceAfter"] == await customer.balance()
    for newer, older in itertools.pairwise(entries):
        assert newer["balanceAfter"] - newer["amount"] == older["balanceAfter"]
    assert entries[0]["messageId"] and entries[1]["batchId"] == sent.body["batchId"]
    assert entries[1]["amount"] == -70 and entries[0]["amount"] == 35
    assert entries[2]["depositId"] == started["depositId"] and entries[2]["amount"] == 1000
    page = await customer.transactions(page=2, per_page=1)
    assert page.body["page"] == 2 and page.body["per_page"] == 1 and page.body["total"] == 4
    assert page.body["data"] == [entries[1]]
    bad = await customer.transactions(per_page=101)
    assert bad.status == 422 and bad.code == "validation_failed"


async def test_the_ledger_invariant_holds_after_every_topup_test(platform: Platform) -> None:
    assert await platform.ledger_mismatches() == []
