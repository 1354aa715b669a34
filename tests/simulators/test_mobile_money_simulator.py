"""The Mobile Money simulator as a real process: tokens, MTN MoMo collections, shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.simulators.harness import eventually
from tests.simulators.mobile_money_client import MomoClient
from tests.simulators.mobile_money_harness import (
    AIRTEL_CLIENT_ID,
    AIRTEL_CLIENT_SECRET,
    DECLINER,
    MTN_API_KEY,
    MTN_API_USER,
    MTN_SUBSCRIPTION_KEY,
    SILENT,
    CallbackReceiver,
    new_reference,
    new_transaction_id,
    start_mobile_money,
    stop_mobile_money,
)

# The shared simulator, callback receiver and client fixtures.
pytest_plugins = ["tests.simulators.mobile_money_fixtures"]
pytestmark = pytest.mark.asyncio


# Tokens


async def test_mtn_token_needs_valid_api_user_and_subscription_key(client: MomoClient) -> None:
    status, body = await client.mtn_token_call(MTN_API_USER, MTN_API_KEY)
    assert status == 200
    assert body["token_type"] == "access_token" and body["expires_in"] == 3600
    assert body["access_token"]

    assert await client.mtn_token_call(MTN_API_USER, "wrong-key") == (
        401,
        {"error": "login_failed"},
    )
    for subscription_key in ("wrong-subscription", None):
        status, body = await client.mtn_token_call(MTN_API_USER, MTN_API_KEY, subscription_key)
        assert status == 401
        assert body["statusCode"] == 401
        assert body["message"].startswith("Access denied due to invalid subscription key.")


async def test_airtel_token_needs_client_credentials(client: MomoClient) -> None:
    status, body = await client.airtel_token_call(AIRTEL_CLIENT_ID, AIRTEL_CLIENT_SECRET)
    assert status == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == "180"
    status, body = await client.airtel_token_call(AIRTEL_CLIENT_ID, "wrong")
    assert status == 401 and body["error"] == "invalid_client"


async def test_tokens_are_refused_once_expired(tmp_path: Path) -> None:
    simulator = await asyncio.to_thread(
        start_mobile_money,
        tmp_path / "simulator.log",
        "--mtn-token-lifetime",
        "1",
        "--airtel-token-lifetime",
        "1",
    )
    try:
        async with aiohttp.ClientSession() as session:
            client = MomoClient(session, simulator.base_url)
            mtn, airtel = await client.mtn_token(), await client.airtel_token()
            # An unknown id answers 404 while the token is alive, 401 once it has expired.
            assert (await client.mtn_status(mtn, new_reference()))[0] == 404
            assert (await client.airtel_enquiry(airtel, "unknown"))[0] == 404

            async def both_refused() -> bool:
                mtn_status = (await client.mtn_status(mtn, new_reference()))[0]
                airtel_status = (await client.airtel_enquiry(airtel, "unknown"))[0]
                return (mtn_status, airtel_status) == (401, 401)

            await eventually(both_refused, timeout=5)
            fresh = await client.mtn_token()
            assert (await client.mtn_status(fresh, new_reference()))[0] == 404
    finally:
        assert await asyncio.to_thread(stop_mobile_money, simulator) == 0


# MTN requesttopay


async def test_mtn_request_goes_pending_then_successful_and_is_called_back_twice(
    client: MomoClient, receiver: CallbackReceiver
) -> None:
    await client.control("POST", "/_sim/config", {"approval_delay": 0.3})
    token, reference = await client.mtn_token(), new_reference()
    callback_path = f"/mtn/{reference}"
    status, body = await client.request_to_pay(
        token, reference, "256771234567", callback_url=receiver.url + callback_path
    )
    assert (status, body) == (202, None)

    status, pending = await client.mtn_status(token, reference)
    assert status == 200 and pending["status"] == "PENDING"
    assert "financialTransactionId" not in pending and "reason" not in pending

    settled = await eventually(lambda: client.mtn_settled(token, reference))
    assert settled["status"] == "SUCCESSFUL"
    assert settled["financialTransactionId"].isdigit()
    assert {k: settled[k] for k in ("amount", "currency", "externalId", "payer")} == {
        "amount": "5000",
        "currency": "UGX",
        "externalId": "topup-1",
        "payer": {"partyIdType": "MSISDN", "partyId": "256771234567"},
    }

    async def two_callbacks() -> bool:
        return len(receiver.at(callback_path)) == 2

    await eventually(two_callbacks)
    for callback in receiver.at(callback_path):
        assert callback.method == "PUT"
        assert callback.json() == settled
        assert reference not in callback.raw.decode()  # MTN never echoes the reference id
        assert "x-signature" not in {name.lower() for name in callback.headers}

    [stored] = await client.requests(provider="mtn", reference=reference)
    assert stored["msisdn"] == "+256771234567" and stored["status"] == "SUCCESSFUL"
    assert stored["callbacksSent"] == 2 and stored["statusQueries"] >= 2
    assert stored["callbackUrl"] == receiver.url + callback_path


async def test_mtn_reused_reference_is_refused_without_the_original(client: MomoClient) -> None:
    token, reference = await client.mtn_token(), new_reference()
    assert (await client.request_to_pay(token, reference, "256772000001"))[0] == 202
    status, body = await client.request_to_pay(token, reference, "256772000002", amount="9000")
    assert status == 409
    assert body == {
        "code": "RESOURCE_ALREADY_EXIST",
        "message": "Duplicated reference id. Creation of resource failed.",
    }
    [stored] = await client.requests(reference=reference)
    assert stored["msisdn"] == "+256772000001" and stored["amount"] == 5000


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("reference not a uuid", 400, "INVALID_REFERENCE_ID"),
        ("reference a uuid1", 400, "INVALID_REFERENCE_ID"),
        ("currency EUR", 500, "INVALID_CURRENCY"),
        ("target environment mtnuganda", 500, "NOT_ALLOWED_TARGET_ENVIRONMENT"),
        ("empty callback url", 400, "INVALID_CALLBACK_URL"),
        ("amount as a number", 400, "INVALID_PARAMETER"),
        ("partyId with +", 400, "INVALID_PARAMETER"),
        ("payerMessage with &", 400, "INVALID_PARAMETER"),
        ("payeeNote over 160", 400, "INVALID_PARAMETER"),
        ("payeeNote empty", 500, "INTERNAL_PROCESSING_ERROR"),
    ],
)
async def test_mtn_refuses_malformed_requests_and_creates_nothing(
    client: MomoClient, case: str, status: int, code: str
) -> None:
    token, reference = await client.mtn_token(), new_reference()
    party, headers, changes = "256773000001", dict[str, str](), dict[str, Any]()
    if case == "reference not a uuid":
        reference = "topup-42"
    elif case == "reference a uuid1":
        reference = "c232ab00-9414-11ec-b3c8-9f6bdeced846"
    elif case == "currency EUR":
        changes["currency"] = "EUR"
    elif case == "target environment mtnuganda":
        headers["X-Target-Environment"] = "mtnuganda"
    elif case == "empty callback url":
        headers["X-Callback-Url"] = ""
    elif case == "amount as a number":
        changes["amount"] = 5000
    elif case == "partyId with +":
        party = "+256773000001"
    elif case == "payerMessage with &":
        changes["payerMessage"] = "Top-up & thanks"
    elif case == "payeeNote over 160":
        changes["payeeNote"] = "x" * 161
    elif case == "payeeNote empty":
        changes["payeeNote"] = ""
    answer = await client.request_to_pay(token, reference, party, headers=headers, **changes)
    assert answer[0] == status and answer[1]["code"] == code, answer
    assert await client.requests(provider="mtn") == []


async def test_mtn_calls_need_a_live_bearer_token(client: MomoClient) -> None:
    for token in ("", "made-up-token"):
        status, body = await client.request_to_pay(token, new_reference(), "256773000002")
        assert status == 401, body
    assert await client.requests() == []


async def test_mtn_unknown_reference_is_404(client: MomoClient) -> None:
    status, body = await client.mtn_status(await client.mtn_token(), new_reference())
    assert (status, body) == (
        404,
        {"code": "RESOURCE_NOT_FOUND", "message": "Requested resource was not found."},
    )


async def test_provisioned_api_user_is_bound_to_its_callback_host(client: MomoClient) -> None:
    user_id = new_reference()
    provisioning = {"Ocp-Apim-Subscription-Key": MTN_SUBSCRIPTION_KEY, "X-Reference-Id": user_id}
    body = {"providerCallbackHost": "callbacks.example.com"}
    status, _ = await client.call("POST", "/v1_0/apiuser", json_body=body, headers=provisioning)
    assert status == 201
    status, error = await client.call("POST", "/v1_0/apiuser", json_body=body, headers=provisioning)
    assert (status, error["code"]) == (409, "RESOURCE_ALREADY_EXIST")
    subscription = {"Ocp-Apim-Subscription-Key": MTN_SUBSCRIPTION_KEY}
    status, key = await client.call("POST", f"/v1_0/apiuser/{user_id}/apikey", headers=subscription)
    assert status == 201
    status, user = await client.call("GET", f"/v1_0/apiuser/{user_id}", headers=subscription)
    assert (status, user) == (
        200,
        {"providerCallbackHost": "callbacks.example.com", "targetEnvironment": "sandbox"},
    )

    token = await client.mtn_token(user_id, key["apiKey"])
    status, error = await client.request_to_pay(
        token, new_reference(), "256774000001", callback_url="http://127.0.0.1:9/cb"
    )
    assert (status, error["code"]) == (500, "INVALID_CALLBACK_URL_HOST")
    allowed = "https://callbacks.example.com/momo/1"
    status, _ = await client.request_to_pay(
        token, new_reference(), "256774000001", callback_url=allowed
    )
    assert status == 202


async def test_mtn_decline_fails_with_approval_rejected_and_calls_back(
    client: MomoClient, receiver: CallbackReceiver
) -> None:
    token, reference = await client.mtn_token(), new_reference()
    path = f"/mtn/{reference}"
    await client.request_to_pay(token, reference, DECLINER, callback_url=receiver.url + path)
    settled = await eventually(lambda: client.mtn_settled(token, reference))
    assert (settled["status"], settled["reason"]) == ("FAILED", "APPROVAL_REJECTED")
    assert "financialTransactionId" not in settled

    async def two_callbacks() -> bool:
        return len(receiver.at(path)) == 2

    await eventually(two_callbacks)
    assert all(callback.json() == settled for callback in receiver.at(path))


async def test_payer_who_never_answers_stays_pending_without_callbacks(
    client: MomoClient, receiver: CallbackReceiver
) -> None:
    token, silent, witness = await client.mtn_token(), new_reference(), new_reference()
    await client.request_to_pay(token, silent, SILENT, callback_url=f"{receiver.url}/mtn/{silent}")
    await client.request_to_pay(
        token, witness, "256775000001", callback_url=f"{receiver.url}/mtn/{witness}"
    )

    async def witness_called_back_twice() -> bool:
        return len(receiver.at(f"/mtn/{witness}")) == 2

    # The witness was asked later, so the silent payer has had longer than it to answer.
    await eventually(witness_called_back_twice)
    status, body = await client.mtn_status(token, silent)
    assert (status, body["status"]) == (200, "PENDING")
    assert receiver.at(f"/mtn/{silent}") == []


# Shutdown


async def test_sigterm_exits_0_with_requests_and_callbacks_pending(tmp_path: Path) -> None:
    simulator = await asyncio.to_thread(
        start_mobile_money,
        tmp_path / "simulator.log",
        "--approval-delay",
        "0",
        "--airtel-callback-url",
        "http://127.0.0.1:9/unreachable",
    )
    try:
        async with aiohttp.ClientSession() as session:
            client = MomoClient(session, simulator.base_url)
            token = await client.airtel_token()
            for msisdn in (SILENT[3:], "756000001", "756000002"):
                assert (await client.airtel_pay(token, new_transaction_id(), msisdn))[0] == 200
    finally:
        code = await asyncio.to_thread(stop_mobile_money, simulator)
    assert code == 0, simulator.log()
    assert '"event": "simulator.stopped"' in simulator.log()
