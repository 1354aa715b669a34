"""POST /api/v1/sms/send: the reply, recipients in every form, validation, units and cost."""

from __future__ import annotations

import pytest

from libs.common.admission.settings import AdmissionSettings
from libs.common.admission.writes import INLINE_MESSAGES
from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform


async def test_a_send_is_accepted_and_charged(customer: Customer) -> None:
    reply = await customer.send("Your code is 482913", ["0772123456", "+256701234567"])
    assert reply.status == 202, reply
    body = reply.body
    assert body["status"] == "queued"
    assert body["batchId"].startswith("bat_")
    assert (body["recipients"], body["units"], body["cost"]) == (2, 2, 70)
    assert (body["currency"], body["encoding"], body["balance"]) == ("UGX", "GSM-7", 10_000 - 70)
    assert [m["recipient"] for m in body["messages"]] == ["+256772123456", "+256701234567"]
    for message in body["messages"]:
        assert message["id"].startswith("msg_")
        assert (message["units"], message["cost"], message["status"]) == (1, 35, "queued")
    assert await customer.balance() == 10_000 - 70


async def test_recipients_in_every_form_are_normalised_and_deduplicated(customer: Customer) -> None:
    forms = (
        "+256772123456, 256772123456 0772123456;0772-123-456\n"
        "+256 (0)772 123 456, 00256772123456, 0701234567"
    )
    reply = await customer.send("hello", forms)
    assert reply.status == 202, reply
    assert [m["recipient"] for m in reply.body["messages"]] == ["+256772123456", "+256701234567"]
    assert reply.body["cost"] == 70


async def test_bad_recipients_fail_the_whole_request_and_charge_nothing(
    platform: Platform, customer: Customer
) -> None:
    reply = await customer.send(
        "hello", ["0772123456", "0392123456", "0722123456", "+254712345678", "07721", "0712345678"]
    )
    assert (reply.status, reply.code) == (422, "validation_failed")
    reasons = {d["recipient"]: d["reason"] for d in reply.body["error"]["details"]}
    assert reasons == {
        "0392123456": "fixed_line",
        "0722123456": "unknown_range",
        "+254712345678": "not_ugandan",
        "07721": "malformed",
        "0712345678": "no_route",
    }
    assert await customer.balance() == 10_000
    assert (
        await platform.scalar(
            "SELECT count(*) FROM batches WHERE wallet_id = :w", w=customer.wallet_id
        )
        == 0
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"message": "hi", "recipient": "0772123456"}, "walletId"),
        ({"message": "", "recipient": "0772123456"}, "message"),
        ({"message": "   ", "recipient": "0772123456"}, "message"),
        ({"message": "x" * 1601, "recipient": "0772123456"}, "message"),
        ({"message": "hi"}, "recipient"),
        ({"message": "hi", "recipient": ""}, "recipient"),
        ({"message": "hi", "recipient": 772123456}, "recipient"),
        ({"message": "hi", "recipient": "0772123456", "priority": "urgent"}, "priority"),
    ],
)
async def test_invalid_bodies_name_the_field(
    customer: Customer, payload: dict[str, object], field: str
) -> None:
    body = {"walletId": customer.wallet_id, **payload}
    if field == "walletId":
        body.pop("walletId")
    reply = await customer.request("POST", "/api/v1/sms/send", json=body)
    assert (reply.status, reply.code) == (422, "validation_failed"), reply
    fields = [d["field"].split(".")[0] for d in reply.body["error"]["details"]]
    assert field in fields
    assert await customer.balance() == 10_000


async def test_a_body_that_is_not_json_is_a_validation_error(customer: Customer) -> None:
    reply = await customer.request(
        "POST", "/api/v1/sms/send", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (reply.status, reply.code) == (422, "validation_failed")


async def test_more_than_ten_thousand_recipients_are_refused(customer: Customer) -> None:
    numbers = [f"+2567720{n:05d}" for n in range(10_001)]
    reply = await customer.send("hi", numbers)
    assert (reply.status, reply.code) == (422, "validation_failed")
    assert await customer.balance() == 10_000


@pytest.mark.parametrize(
    ("text", "encoding", "units"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),  # the escape pair never straddles parts
        ("{" * 80, "GSM-7", 1),  # extension characters count two septets
        ("{" * 81, "GSM-7", 2),
        ("ж" * 70, "UCS-2", 1),
        ("ж" * 71, "UCS-2", 2),
        ("ж" * 134, "UCS-2", 2),
        ("ж" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),
        ("a" * 1600, "GSM-7", 11),
    ],
)
async def test_units_are_real_sms_segments(
    customer: Customer, text: str, encoding: str, units: int
) -> None:
    reply = await customer.send(text, "0772123456")
    assert reply.status == 202, reply
    assert (reply.body["encoding"], reply.body["units"], reply.body["cost"]) == (
        encoding,
        units,
        units * 35,
    )


async def test_long_messages_arrive_whole_at_the_carrier(
    platform: Platform, customer: Customer
) -> None:
    gsm = "Karibu! Your order {A-17} costs €12 [paid]. " * 8  # extension characters, 3 parts
    ucs = "Webale nyo — ebintu byo bituuse ✓ " * 5  # UCS-2, 3 parts
    sent = {
        "+256772111001": gsm,
        "+256701111002": ucs,
    }
    for recipient, text in sent.items():
        reply = await customer.send(text, recipient)
        assert reply.status == 202, reply
        assert reply.body["units"] == 3

    for recipient, text in sent.items():

        async def arrived(recipient: str = recipient) -> list[dict[str, object]]:
            return await platform.simulator_messages(recipient)

        [received] = await eventually(arrived)
        assert received["text"] == text
        assert received["parts"] == 3


@pytest.mark.parametrize("count", [INLINE_MESSAGES, INLINE_MESSAGES + 1])
async def test_admissions_on_both_sides_of_the_inline_limit_write_every_message(
    platform: Platform, count: int
) -> None:
    """Up to INLINE_MESSAGES rows go in the charge's statement, more are COPYed: both ways
    every message is stored with its charge, and its send job reaches the carrier."""
    customer = await platform.customer(credit=35 * count)
    recipients = [f"+25677220{index:04d}" for index in range(count)]
    reply = await customer.send("Sale ends today", recipients, priority="normal")
    assert reply.status == 202, reply
    assert (reply.body["recipients"], reply.body["cost"], reply.body["balance"]) == (
        count,
        35 * count,
        0,
    )
    stored = await platform.rows(
        "SELECT m.id, m.recipient, m.cost, m.units, m.wallet_id,"
        " m.created_at = b.created_at AND m.updated_at = b.created_at AS stamped,"
        " m.expires_at - b.created_at AS validity"
        " FROM messages m JOIN batches b ON b.id = m.batch_id"
        " WHERE m.batch_id = :b ORDER BY m.id",
        b=reply.body["batchId"],
    )
    assert [(r.id, r.recipient) for r in stored] == [
        (m["id"], m["recipient"]) for m in reply.body["messages"]
    ]
    assert {(r.cost, r.units, r.wallet_id, r.stamped, r.validity) for r in stored} == {
        (35, 1, customer.wallet_id, True, AdmissionSettings().validity_bulk)
    }

    async def delivered() -> int | None:
        done = await platform.scalar(
            "SELECT count(*) FROM messages WHERE batch_id = :b AND status = 'delivered'",
            b=reply.body["batchId"],
        )
        return done if done == count else None

    assert await eventually(delivered) == count
    assert await platform.ledger_mismatches() == []


async def test_insufficient_balance_sends_and_charges_nothing(platform: Platform) -> None:
    customer = await platform.customer(credit=100)
    reply = await customer.send("hello", ["0772123456", "0772123457", "0772123458"])
    assert (reply.status, reply.code) == (402, "insufficient_balance")
    assert reply.body["error"]["details"] == {"balance": 100, "cost": 105, "currency": "UGX"}
    assert await customer.balance() == 100
    assert (
        await platform.scalar(
            "SELECT count(*) FROM messages WHERE wallet_id = :w", w=customer.wallet_id
        )
        == 0
    )


async def test_unknown_routes_are_not_found(customer: Customer) -> None:
    reply = await customer.request("GET", "/api/v1/nothing-here")
    assert (reply.status, reply.code) == (404, "not_found")
