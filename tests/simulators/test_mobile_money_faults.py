"""The Mobile Money simulator's control endpoints: callbacks, injected faults, payers."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.simulators.harness import eventually
from tests.simulators.mobile_money_client import MomoClient
from tests.simulators.mobile_money_harness import (
    CallbackReceiver,
    new_reference,
    new_transaction_id,
)

# The shared simulator, callback receiver and client fixtures.
pytest_plugins = ["tests.simulators.mobile_money_fixtures"]
pytestmark = pytest.mark.asyncio


# Callbacks


async def test_drop_callbacks_settles_without_calling_back(
    client: MomoClient, receiver: CallbackReceiver
) -> None:
    await client.control("POST", "/_sim/config", {"drop_callbacks": True})
    token, dropped, witness = await client.mtn_token(), new_reference(), new_reference()
    await client.request_to_pay(
        token, dropped, "256776000001", callback_url=f"{receiver.url}/mtn/{dropped}"
    )
    assert (await eventually(lambda: client.mtn_settled(token, dropped)))["status"] == (
        "SUCCESSFUL"
    )
    await client.control("POST", "/_sim/config", {"drop_callbacks": False})
    await client.request_to_pay(
        token, witness, "256776000002", callback_url=f"{receiver.url}/mtn/{witness}"
    )

    async def witness_called_back_twice() -> bool:
        return len(receiver.at(f"/mtn/{witness}")) == 2

    await eventually(witness_called_back_twice)
    assert receiver.at(f"/mtn/{dropped}") == []
    [stored] = await client.requests(reference=dropped)
    assert stored["callbacksSent"] == 0


async def test_failing_receiver_is_not_retried(
    client: MomoClient, receiver: CallbackReceiver
) -> None:
    await client.control("POST", "/_sim/config", {"callback_copies": 1})
    token, reference = await client.mtn_token(), new_reference()
    await client.request_to_pay(
        token, reference, "256776000003", callback_url=f"{receiver.url}/fail/{reference}"
    )

    async def attempts() -> list[dict[str, Any]]:
        made = (await client.control("GET", f"/_sim/callbacks?reference={reference}"))["data"]
        # An attempt is listed as soon as it starts; wait until the receiver has answered.
        return [a for a in made if a["status"] is not None or a["error"] is not None]

    [attempt] = await eventually(attempts)
    assert attempt["status"] == 500 and attempt["method"] == "PUT"
    witness = new_reference()
    await client.request_to_pay(
        token, witness, "256776000004", callback_url=f"{receiver.url}/mtn/{witness}"
    )

    async def witness_called_back() -> bool:
        return len(receiver.at(f"/mtn/{witness}")) == 1

    await eventually(witness_called_back)
    assert len(receiver.at(f"/fail/{reference}")) == 1


# Injected faults


async def test_fail_next_requests_answers_500_and_creates_nothing(client: MomoClient) -> None:
    await client.control("POST", "/_sim/config", {"fail_next_requests": 2})
    mtn, airtel = await client.mtn_token(), await client.airtel_token()
    reference, transaction_id = new_reference(), new_transaction_id()
    status, body = await client.request_to_pay(mtn, reference, "256777000001")
    assert (status, body["code"]) == (500, "INTERNAL_PROCESSING_ERROR")
    status, body = await client.airtel_pay(airtel, transaction_id, "777000001")
    assert (status, body["status"]["success"], body["status"]["code"]) == (500, False, "500")
    assert (await client.mtn_status(mtn, reference))[0] == 404
    assert (await client.airtel_enquiry(airtel, transaction_id))[0] == 404

    # The third call is served again, and the same ids were never used.
    assert (await client.request_to_pay(mtn, reference, "256777000001"))[0] == 202
    status, body = await client.airtel_pay(airtel, transaction_id, "777000001")
    assert status == 200 and body["status"]["success"] is True


async def test_accepted_request_whose_response_is_lost_still_completes(
    client: MomoClient,
) -> None:
    await client.control("POST", "/_sim/config", {"accept_then_fail_response": 1})
    token, reference = await client.mtn_token(), new_reference()
    status, body = await client.request_to_pay(token, reference, "256778000001")
    assert (status, body["code"]) == (503, "SERVICE_UNAVAILABLE")
    # The client retries with the same id, as it should, and learns it was accepted.
    assert (await client.request_to_pay(token, reference, "256778000001"))[0] == 409
    assert (await eventually(lambda: client.mtn_settled(token, reference)))["status"] == (
        "SUCCESSFUL"
    )


async def test_accepted_payment_whose_connection_drops_still_completes(
    client: MomoClient,
) -> None:
    await client.control(
        "POST",
        "/_sim/config",
        {"accept_then_fail_response": 1, "accept_then_fail_mode": "disconnect"},
    )
    token, transaction_id = await client.airtel_token(), new_transaction_id()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.airtel_pay(token, transaction_id, "778000002")
    status, body = await client.airtel_pay(token, transaction_id, "778000002")
    assert (status, body["status"]["result_code"]) == (200, "ESB000041")
    settled = await eventually(lambda: client.airtel_settled(token, transaction_id))
    assert settled["data"]["transaction"]["status"] == "TS"


async def test_response_delay_slows_provider_paths_only(client: MomoClient) -> None:
    await client.control("POST", "/_sim/config", {"response_delay": 0.5})
    quick = aiohttp.ClientTimeout(total=0.2)
    async with aiohttp.ClientSession(timeout=quick) as session:
        impatient = MomoClient(session, client.base)
        with pytest.raises(TimeoutError):
            await impatient.airtel_token()
        assert (await impatient.call("GET", "/_sim/config"))[0] == 200


async def test_config_rejects_unknown_or_mistyped_knobs(client: MomoClient) -> None:
    for body in ({"drop_callbacks": "yes"}, {"approval_delay": -1}, {"speed": 2}, [1]):
        status, error = await client.call("POST", "/_sim/config", json_body=body)
        assert status == 422 and error["error"]["code"] == "validation_failed"
    config = await client.control("GET", "/_sim/config")
    assert config["approval_delay"] == 0.1 and config["callback_copies"] == 2


# Payer overrides


async def test_payer_behaviour_override_and_reset(client: MomoClient) -> None:
    mtn, airtel = await client.mtn_token(), await client.airtel_token()
    answer = await client.control(
        "PUT", "/_sim/payers/+256755000001", {"behaviour": "insufficient_funds"}
    )
    assert answer == {"msisdn": "+256755000001", "behaviour": "insufficient_funds"}
    reference, transaction_id = new_reference(), new_transaction_id()
    await client.request_to_pay(mtn, reference, "256755000001")
    await client.airtel_pay(airtel, transaction_id, "755000001")
    failed = await eventually(lambda: client.mtn_settled(mtn, reference))
    assert (failed["status"], failed["reason"]) == ("FAILED", "NOT_ENOUGH_FUNDS")
    tf = (await eventually(lambda: client.airtel_settled(airtel, transaction_id)))["data"]
    assert tf["transaction"]["status"] == "TF"
    assert "insufficient" in tf["transaction"]["message"].lower()

    await client.control("DELETE", "/_sim/payers/256755000001")
    again = new_reference()
    await client.request_to_pay(mtn, again, "256755000001")
    assert (await eventually(lambda: client.mtn_settled(mtn, again)))["status"] == "SUCCESSFUL"
    status, _ = await client.call(
        "PUT", "/_sim/payers/256755000001", json_body={"behaviour": "maybe"}
    )
    assert status == 422
