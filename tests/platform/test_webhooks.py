"""Webhooks end to end: real receivers, signatures checked as customers check them."""

from __future__ import annotations

import asyncio
import statistics
from datetime import datetime
from typing import Any

import pytest

from tests.platform.client import Customer, Reply, eventually
from tests.platform.conftest import Platform, StartPlatform
from tests.platform.receiver import Received, Receiver, verify

# The delivery timeout of the isolation test: shorter than the receiver's 8 s hang.
HANG = 6


async def register(customer: Customer, url: str, **extra: Any) -> dict[str, Any]:
    reply = await customer.request(
        "POST", "/api/v1/webhooks", json={"walletId": customer.wallet_id, "url": url, **extra}
    )
    assert reply.status == 201, reply
    return dict(reply.body)


async def deliveries(customer: Customer, webhook_id: str, **params: Any) -> Reply:
    return await customer.request(
        "GET",
        f"/api/v1/webhooks/{webhook_id}/deliveries",
        params={"walletId": customer.wallet_id, **params},
    )


async def received(
    receiver: Receiver, path: str, count: int, timeout: float = 20
) -> list[Received]:
    async def enough() -> list[Received] | None:
        got = receiver.at(path)
        return got if len(got) >= count else None

    return await eventually(enough, timeout=timeout)


async def test_endpoints_are_created_listed_and_deleted_per_wallet(
    platform: Platform, customer: Customer, receiver: Receiver
) -> None:
    created = await register(customer, receiver.url("/ok/crud"), events=["message.delivered"])
    assert created["id"].startswith("wh_")
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["message.delivered"]
    assert created["status"] == "enabled"
    default = await register(customer, receiver.url("/ok/crud-default"))
    assert default["events"] == [
        "message.sent",
        "message.delivered",
        "message.undelivered",
        "message.failed",
        "deposit.succeeded",
        "deposit.failed",
    ]
    listed = await customer.request(
        "GET", "/api/v1/webhooks", params={"walletId": customer.wallet_id}
    )
    assert [w["id"] for w in listed.body["data"]] == [created["id"], default["id"]]
    assert all("secret" not in w for w in listed.body["data"])
    other = await platform.customer()
    assert (
        await other.request(
            "DELETE", f"/api/v1/webhooks/{created['id']}", params={"walletId": other.wallet_id}
        )
    ).status == 404
    forbidden = await other.request(
        "GET", "/api/v1/webhooks", params={"walletId": customer.wallet_id}
    )
    assert forbidden.status == 403 and forbidden.code == "wallet_forbidden"
    gone = await customer.request(
        "DELETE", f"/api/v1/webhooks/{created['id']}", params={"walletId": customer.wallet_id}
    )
    assert gone.status == 204
    listed = await customer.request(
        "GET", "/api/v1/webhooks", params={"walletId": customer.wallet_id}
    )
    assert [w["id"] for w in listed.body["data"]] == [default["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"url": "https://example.com/x", "events": ["message.read"]}, "events"),
        ({}, "url"),
    ],
)
async def test_a_bad_endpoint_is_refused(
    customer: Customer, body: dict[str, Any], field: str
) -> None:
    reply = await customer.request(
        "POST", "/api/v1/webhooks", json={"walletId": customer.wallet_id, **body}
    )
    assert reply.status == 422 and reply.code == "validation_failed", reply
    assert reply.body["error"]["details"][0]["field"] == field


async def test_each_status_change_is_posted_once_signed_as_standard_webhooks_say(
    customer: Customer, receiver: Receiver
) -> None:
    hook = await register(customer, receiver.url("/ok/signed"))
    sent = await customer.send("Webhook check", "+256772127001")
    assert sent.status == 202
    got = await received(receiver, "/ok/signed", 2)
    await asyncio.sleep(0.5)
    got = receiver.at("/ok/signed")
    assert sorted(r.json["type"] for r in got) == ["message.delivered", "message.sent"]
    for delivery in got:
        assert verify(hook["secret"], delivery)
        body = delivery.json
        assert delivery.headers["webhook-id"] == body["id"] and body["id"].startswith("evt_")
        assert delivery.headers["Content-Type"] == "application/json"
        assert set(body) == {"id", "type", "createdAt", "data"}
        assert body["data"] == {
            "messageId": sent.body["messages"][0]["id"],
            "batchId": sent.body["batchId"],
            "walletId": customer.wallet_id,
            "recipient": "+256772127001",
            "status": body["type"].removeprefix("message."),
            "errorCode": None,
            "units": 1,
            "cost": 35,
        }
    forged = Received("/x", {**got[0].headers}, got[0].body + b" ", got[0].at)
    assert not verify(hook["secret"], forged)


async def test_an_endpoint_gets_only_the_events_it_asked_for(
    customer: Customer, receiver: Receiver
) -> None:
    await register(customer, receiver.url("/ok/filtered"), events=["message.failed"])
    assert (await customer.send("Filter", ["+256772127002", "+256700000111"])).status == 202
    (failed,) = await received(receiver, "/ok/filtered", 1)
    assert failed.json["type"] == "message.failed"
    assert failed.json["data"]["recipient"] == "+256700000111"
    assert failed.json["data"]["errorCode"] == "ESME_RINVDSTADR"
    await asyncio.sleep(1.0)
    assert len(receiver.at("/ok/filtered")) == 1


async def test_a_ping_reaches_only_the_tested_endpoint(
    customer: Customer, receiver: Receiver
) -> None:
    hook = await register(customer, receiver.url("/ok/ping"))
    await register(customer, receiver.url("/ok/ping-other"))
    reply = await customer.request(
        "POST", f"/api/v1/webhooks/{hook['id']}/test", json={"walletId": customer.wallet_id}
    )
    assert reply.status == 202, reply
    (ping,) = await received(receiver, "/ok/ping", 1)
    assert ping.json["type"] == "webhook.ping" and ping.json["id"] == reply.body["eventId"]
    assert verify(hook["secret"], ping)
    await asyncio.sleep(0.5)
    assert receiver.at("/ok/ping-other") == []


async def _ping(customer: Customer, hook: dict[str, Any]) -> str:
    reply = await customer.request(
        "POST", f"/api/v1/webhooks/{hook['id']}/test", json={"walletId": customer.wallet_id}
    )
    assert reply.status == 202, reply
    return str(reply.body["eventId"])


async def test_a_failing_endpoint_is_retried_until_it_answers(
    customer: Customer, receiver: Receiver
) -> None:
    hook = await register(customer, receiver.url("/fail/2/retried"))
    event_id = await _ping(customer, hook)
    got = await received(receiver, "/fail/2/retried", 3)
    assert {r.headers["webhook-id"] for r in got} == {event_id}  # one id on every attempt

    async def succeeded() -> dict[str, Any] | None:
        (delivery,) = (await deliveries(customer, hook["id"])).body["data"]
        return delivery if delivery["status"] == "succeeded" else None

    delivery = await eventually(succeeded)
    assert delivery["attempts"] == 3
    assert [a["statusCode"] for a in delivery["attemptLog"]] == [500, 500, 200]
    assert delivery["lastStatusCode"] == 200 and delivery["nextAttemptAt"] is None


async def test_a_hanging_endpoint_is_dead_lettered_and_can_be_replayed(
    customer: Customer, receiver: Receiver
) -> None:
    hook = await register(customer, receiver.url("/hang/dead"))
    event_id = await _ping(customer, hook)

    async def dead() -> dict[str, Any] | None:
        found = (await deliveries(customer, hook["id"], status="dead")).body["data"]
        return found[0] if found else None

    delivery = await eventually(dead, timeout=30)
    assert delivery["attempts"] == 4  # the first attempt and three retries
    assert all(a["error"].startswith("timeout") for a in delivery["attemptLog"])
    receiver.modes["/hang/dead"] = "ok"  # the customer fixes the receiver
    replay = await customer.request(
        "POST",
        f"/api/v1/webhooks/deliveries/{delivery['id']}/replay",
        json={"walletId": customer.wallet_id},
    )
    assert replay.status == 202, replay
    assert replay.body == {"deliveryId": delivery["id"], "status": "pending"}

    async def replayed() -> dict[str, Any] | None:
        (again,) = (await deliveries(customer, hook["id"])).body["data"]
        return again if again["status"] == "succeeded" else None

    await eventually(replayed)
    assert receiver.at("/hang/dead")[-1].headers["webhook-id"] == event_id
    other = await customer.request(
        "POST",
        "/api/v1/webhooks/deliveries/whd_unknown/replay",
        json={"walletId": customer.wallet_id},
    )
    assert other.status == 404


async def test_redirects_are_not_followed(customer: Customer, receiver: Receiver) -> None:
    hook = await register(customer, receiver.url("/redirect/x"))
    await _ping(customer, hook)
    await received(receiver, "/redirect/x", 1)
    await asyncio.sleep(0.5)
    assert receiver.at("/ok/redirected") == []
    (delivery,) = (await deliveries(customer, hook["id"])).body["data"]
    assert delivery["attemptLog"][0]["statusCode"] == 302
    assert delivery["attemptLog"][0]["error"] == "redirect not followed"


async def test_a_hanging_endpoint_does_not_slow_another_wallets_deliveries(
    start_platform: StartPlatform, receiver: Receiver
) -> None:
    # Its own platform, with hangs far longer than any delivery on a busy machine takes:
    # a healthy delivery that waited behind one would stand out by seconds.
    platform = await start_platform(extra_env={"WESENDALL_WEBHOOK_TIMEOUT": str(HANG)})
    slow, fast = await platform.customer(), await platform.customer()
    await register(slow, receiver.url("/hang/neighbour"))
    await register(fast, receiver.url("/ok/healthy"), events=["message.sent"])
    # The hanging endpoint gets its events first and keeps its attempts busy.
    await asyncio.gather(*(slow.send(f"Slow {n}", f"+2567721280{n:02d}") for n in range(20)))
    await asyncio.sleep(0.5)
    replies = await asyncio.gather(
        *(fast.send(f"Fast {n}", f"+2567721290{n:02d}") for n in range(30))
    )
    assert all(r.status == 202 for r in replies)
    got = await received(receiver, "/ok/healthy", 30)
    latencies = sorted(r.at - datetime.fromisoformat(r.json["createdAt"]).timestamp() for r in got)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    # The hanging neighbour's attempts each wait HANG seconds; none of that may show.
    assert p99 < HANG / 2, f"healthy p99 {p99:.3f}s (median {statistics.median(latencies):.3f}s)"
    assert receiver.at("/hang/neighbour")  # it was being attempted all along


async def test_both_secrets_sign_during_a_rotation(customer: Customer, receiver: Receiver) -> None:
    hook = await register(customer, receiver.url("/ok/rotation"))
    rotated = await customer.request(
        "POST",
        f"/api/v1/webhooks/{hook['id']}/rotate-secret",
        json={"walletId": customer.wallet_id, "overlapSeconds": 3600},
    )
    assert rotated.status == 200, rotated
    new_secret = rotated.body["secret"]
    assert new_secret != hook["secret"]
    await _ping(customer, hook)
    (during,) = await received(receiver, "/ok/rotation", 1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verify(new_secret, during) and verify(hook["secret"], during)
    again = await customer.request(
        "POST",
        f"/api/v1/webhooks/{hook['id']}/rotate-secret",
        json={"walletId": customer.wallet_id, "overlapSeconds": 0},
    )
    await _ping(customer, hook)
    got = await received(receiver, "/ok/rotation", 2)
    assert verify(again.body["secret"], got[1]) and not verify(new_secret, got[1])


async def test_deposit_outcomes_reach_webhooks(customer: Customer, receiver: Receiver) -> None:
    hook = await register(customer, receiver.url("/ok/deposits"), events=["deposit.succeeded"])
    started = await customer.topup(1500, "0772127100")
    assert started.status == 202
    (event,) = await received(receiver, "/ok/deposits", 1)
    assert verify(hook["secret"], event)
    assert event.json["type"] == "deposit.succeeded"
    assert event.json["data"]["depositId"] == started.body["depositId"]
    assert event.json["data"]["status"] == "successful"
