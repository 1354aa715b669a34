"""History, batch progress, balance and prices, and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from libs.common.db import session_scope
from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform


async def test_history_pages_newest_first_with_a_total(customer: Customer) -> None:
    for n in range(3):
        assert (await customer.send(f"History {n}", f"+25677240{n:04d}")).status == 202
    page1 = await customer.history(page=1, per_page=2)
    page2 = await customer.history(page=2, per_page=2)
    assert page1.status == 200, page1
    assert (page1.body["page"], page1.body["per_page"], page1.body["total"]) == (1, 2, 3)
    assert [m["message"] for m in page1.body["data"]] == ["History 2", "History 1"]
    assert [m["message"] for m in page2.body["data"]] == ["History 0"]
    message = page1.body["data"][0]
    assert set(message) == {
        "id",
        "batchId",
        "recipient",
        "message",
        "status",
        "units",
        "cost",
        "errorCode",
        "createdAt",
        "updatedAt",
    }


async def test_history_filters(customer: Customer) -> None:
    first = await customer.send("Filter one", "0772410001")
    await customer.send("Filter two", ["0772410002", "+256700000111"])
    by_recipient = await customer.history(recipient="256772410001")
    assert [m["message"] for m in by_recipient.body["data"]] == ["Filter one"]
    by_batch = await customer.history(batchId=first.body["batchId"])
    assert by_batch.body["total"] == 1

    async def failed() -> list[object]:
        return (await customer.history(status="failed")).body["data"]

    [rejected] = await eventually(failed)
    assert rejected["recipient"] == "+256700000111"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await customer.history(**{"from": future})).body["total"] == 0
    assert (await customer.history(to=future)).body["total"] == 3


async def test_history_rejects_bad_queries(customer: Customer) -> None:
    for params in (
        {"per_page": 0},
        {"per_page": 101},
        {"page": 0},
        {"status": "lost"},
        {"from": "yesterday"},
        {"recipient": "0392123456"},
    ):
        reply = await customer.history(**params)
        assert (reply.status, reply.code) == (422, "validation_failed"), params


async def test_batches_report_progress_and_belong_to_their_wallet(
    platform: Platform, customer: Customer
) -> None:
    sent = await customer.send("Progress", ["0772420001", "0772420002"])
    batch_id = sent.body["batchId"]

    async def done() -> dict[str, object] | None:
        reply = await customer.batch(batch_id)
        return reply.body if reply.body["counts"]["delivered"] == 2 else None

    body = await eventually(done)
    assert (body["batchId"], body["recipients"], body["units"], body["cost"]) == (
        batch_id,
        2,
        2,
        70,
    )
    assert body["createdAt"]
    other = await platform.customer()
    reply = await other.batch(batch_id)
    assert (reply.status, reply.code) == (404, "not_found")
    reply = await customer.request(
        "GET", f"/api/v1/sms/batches/{batch_id}", params={"walletId": other.wallet_id}
    )
    assert (reply.status, reply.code) == (403, "wallet_forbidden")


async def test_balance_and_price_follow_negotiated_and_volume_prices(
    platform: Platform,
) -> None:
    customer = await platform.customer(credit=100_000)
    reply = await customer.request(
        "GET", "/api/v1/account/balance", params={"walletId": customer.wallet_id}
    )
    assert reply.body == {
        "walletId": customer.wallet_id,
        "balance": 100_000,
        "currency": "UGX",
        "costPerSms": 35,
    }
    # The test platform's volume tier starts at 1,000 units in 30 days.
    numbers = [f"+2567725{n:05d}" for n in range(1_000)]
    assert (await customer.send("Volume", numbers)).body["cost"] == 35_000
    after = await customer.send("Tier price", "0772123456")
    assert (after.body["cost"], after.body["messages"][0]["cost"]) == (32, 32)

    await platform.cli("admin", "set-price", "--wallet", customer.wallet_id, "--price", "30")
    reply = await customer.request(
        "GET", "/api/v1/account/balance", params={"walletId": customer.wallet_id}
    )
    assert reply.body["costPerSms"] == 30
    assert (await customer.send("Negotiated", "0772123456")).body["cost"] == 30
    assert await platform.ledger_mismatches() == []


async def test_check_ledger_reports_a_message_without_its_batch(
    platform: Platform, customer: Customer
) -> None:
    """Messages have no foreign key to their batch; the ledger check stands in for it."""
    sent = await customer.send("Checked", "0772123456")
    ok = await platform.cli("admin", "check-ledger", check=False)
    assert (ok.returncode, ok.stdout.strip()) == (0, "ledger ok")
    message_id = sent.body["messages"][0]["id"] + "orphan"
    async with session_scope(platform.sessions) as session:
        await session.execute(
            text(
                "INSERT INTO messages (id, batch_id, wallet_id, recipient, carrier, units, cost,"
                " status, parts_done, expires_at, created_at, updated_at)"
                " SELECT :id, 'bat_missing', wallet_id, recipient, carrier, units, cost,"
                " 'failed', parts_done, expires_at, created_at, updated_at"
                " FROM messages WHERE id = :sent"
            ),
            {"id": message_id, "sent": sent.body["messages"][0]["id"]},
        )
    try:
        found = await platform.cli("admin", "check-ledger", check=False)
        assert found.returncode == 1
        assert f"UNBATCHED {message_id}: batch bat_missing" in found.stdout
    finally:
        async with session_scope(platform.sessions) as session:
            await session.execute(text("DELETE FROM messages WHERE id = :id"), {"id": message_id})
    assert await platform.ledger_mismatches() == []


async def test_the_openapi_document_describes_the_api(customer: Customer) -> None:
    reply = await customer.request("GET", "/api/v1/openapi.json", auth=False)
    assert reply.status == 200
    spec = reply.body
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/sms/send", "post"),
        ("/api/v1/sms/group", "post"),
        ("/api/v1/sms/history", "get"),
        ("/api/v1/sms/batches/{batchId}", "get"),
        ("/api/v1/account/balance", "get"),
        ("/api/v1/groups", "get"),
        ("/api/v1/groups", "post"),
        ("/api/v1/groups/{groupId}/contacts", "post"),
        ("/healthz", "get"),
    ]:
        assert method in paths[path], (path, method)
    send = paths["/api/v1/sms/send"]["post"]
    schema_name = send["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[
        -1
    ]
    schema = spec["components"]["schemas"][schema_name]
    assert {"walletId", "message", "recipient"} <= set(schema["required"])
    assert schema["examples"]
    assert {"202", "401", "402", "422", "502"} <= set(send["responses"])
    # Every reference resolves.
    text = str(spec)
    for name in spec["components"]["schemas"]:
        assert name in text
    refs = [part.split("'")[0] for part in text.split("#/components/schemas/")[1:]]
    assert all(ref in spec["components"]["schemas"] for ref in refs)
