"""The Mobile Money simulator as a real process, driven like Airtel Money's collection API."""

from __future__ import annotations

import pytest

from tests.simulators.harness import eventually
from tests.simulators.mobile_money_client import MomoClient
from tests.simulators.mobile_money_harness import (
    DECLINER,
    SILENT,
    CallbackReceiver,
    expected_hash,
    new_transaction_id,
)

# The shared simulator, callback receiver and client fixtures.
pytest_plugins = ["tests.simulators.mobile_money_fixtures"]
pytestmark = pytest.mark.asyncio


async def test_airtel_payment_is_in_process_then_paid_with_two_signed_callbacks(
    client: MomoClient, receiver: CallbackReceiver
) -> None:
    await client.control("POST", "/_sim/config", {"approval_delay": 0.3})
    token, transaction_id = await client.airtel_token(), new_transaction_id()
    status, body = await client.airtel_pay(token, transaction_id, "751234567")
    assert (status, body) == (
        200,
        {
            "data": {"transaction": {"id": transaction_id, "status": "Success."}},
            "status": {
                "code": "200",
                "message": "SUCCESS",
                "result_code": "ESB000010",
                "response_code": "DP00800001006",
                "success": True,
            },
        },
    )
    status, enquiry = await client.airtel_enquiry(token, transaction_id)
    assert status == 200 and enquiry["data"]["transaction"]["status"] == "TIP"
    assert "airtel_money_id" not in enquiry["data"]["transaction"]

    settled = await eventually(lambda: client.airtel_settled(token, transaction_id))
    transaction = settled["data"]["transaction"]
    assert transaction["status"] == "TS" and transaction["airtel_money_id"]
    assert settled["status"]["response_code"] == "DP00800001001"

    async def two_callbacks() -> bool:
        return len(receiver.airtel(transaction_id)) == 2

    await eventually(two_callbacks)
    for callback in receiver.airtel(transaction_id):
        assert callback.method == "POST"
        body = callback.json()
        sent = body["transaction"]
        assert list(sent) == ["id", "message", "status_code", "airtel_money_id"]
        assert sent["status_code"] == "TS"
        assert sent["airtel_money_id"] == transaction["airtel_money_id"]
        assert body["hash"] == expected_hash(sent)
    [stored] = await client.requests(provider="airtel", msisdn="%2B256751234567")
    assert stored["reference"] == transaction_id and stored["callbacksSent"] == 2


async def test_airtel_statuses_for_approving_declining_and_silent_payers(
    client: MomoClient, receiver: CallbackReceiver
) -> None:
    token = await client.airtel_token()
    paid, declined, silent = (new_transaction_id() for _ in range(3))
    await client.airtel_pay(token, silent, SILENT[3:])
    await client.airtel_pay(token, declined, DECLINER[3:])
    await client.airtel_pay(token, paid, "752000001")

    failed = await eventually(lambda: client.airtel_settled(token, declined))
    assert failed["data"]["transaction"]["status"] == "TF"
    assert "airtel_money_id" not in failed["data"]["transaction"]
    assert (await eventually(lambda: client.airtel_settled(token, paid)))["data"]["transaction"][
        "status"
    ] == "TS"

    async def callbacks_for_both() -> bool:
        return len(receiver.airtel(paid)) == 2 and len(receiver.airtel(declined)) == 2

    await eventually(callbacks_for_both)
    tf = receiver.airtel(declined)[0].json()
    assert tf["transaction"]["status_code"] == "TF" and tf["hash"] == expected_hash(
        tf["transaction"]
    )
    status, pending = await client.airtel_enquiry(token, silent)
    assert status == 200 and pending["data"]["transaction"]["status"] == "TIP"
    assert receiver.airtel(silent) == []


async def test_airtel_repeated_transaction_id_is_esb000041(client: MomoClient) -> None:
    token, transaction_id = await client.airtel_token(), new_transaction_id()
    assert (await client.airtel_pay(token, transaction_id, "753000001"))[0] == 200
    status, body = await client.airtel_pay(token, transaction_id, "753000001", amount=7000)
    assert status == 200
    assert body["status"]["code"] == "400" and body["status"]["success"] is False
    assert body["status"]["result_code"] == "ESB000041"
    assert body["status"]["message"] == "External Transaction ID already exists"
    [stored] = await client.requests(reference=transaction_id)
    assert stored["amount"] == 5000


async def test_airtel_refuses_a_number_with_its_country_code(client: MomoClient) -> None:
    token, transaction_id = await client.airtel_token(), new_transaction_id()
    status, body = await client.airtel_pay(token, transaction_id, "256754000001")
    assert status == 200 and body["status"]["success"] is False
    assert body["status"]["result_code"] == "ESB000033"
    assert (await client.airtel_enquiry(token, transaction_id))[0] == 404


async def test_airtel_checks_token_and_market_headers(client: MomoClient) -> None:
    token = await client.airtel_token()
    wrong_country = client.airtel_headers(token, **{"X-Country": "KE"})
    status, body = await client.airtel_pay(
        token, new_transaction_id(), "754000002", headers=wrong_country
    )
    assert status == 400 and body["status"]["success"] is False
    no_token = {"X-Country": "UG", "X-Currency": "UGX"}
    status, _ = await client.airtel_pay(token, new_transaction_id(), "754000002", headers=no_token)
    assert status == 401
    assert await client.requests() == []


async def test_airtel_unknown_transaction_is_404(client: MomoClient) -> None:
    status, body = await client.airtel_enquiry(await client.airtel_token(), "never-sent")
    assert status == 404 and body["data"] == {}
    assert body["status"]["code"] == "404" and body["status"]["success"] is False
    assert body["status"]["message"] == "Transaction not found"
