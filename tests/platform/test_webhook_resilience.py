"""Webhooks under attack and failure: private targets refused, dead endpoints disabled,
a dispatcher killed mid-delivery loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.common.webhooks import new_secret
from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform, StartPlatform
from tests.platform.receiver import Receiver
from tests.platform.test_webhooks import deliveries, received, register


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "loopback_address"),
        ("http://localhost/hook", "loopback_address"),
        ("http://[::1]/hook", "loopback_address"),
        ("http://10.1.2.3/hook", "private_address"),
        ("http://192.168.1.10/hook", "private_address"),
        ("http://169.254.169.254/latest/meta-data/", "metadata_address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata_address"),
        ("http://0x7f.1/hook", "bad_host"),
    ],
)
async def test_private_targets_are_refused_outside_dev_and_test(
    locked_down: Platform, url: str, reason: str
) -> None:
    customer = await locked_down.customer()
    reply = await customer.request(
        "POST", "/api/v1/webhooks", json={"walletId": customer.wallet_id, "url": url}
    )
    assert reply.status == 422 and reply.code == "validation_failed", reply
    assert reply.body["error"]["details"][0]["reason"] == reason


@pytest.fixture(scope="module")
async def locked_down(platforms: Any) -> AsyncIterator[Platform]:
    """A platform that refuses private webhook targets, as production does, and disables
    an endpoint after one second of failures."""
    platform = await platforms.start(
        extra_env={
            "WESENDALL_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "false",
            "WESENDALL_WEBHOOK_DISABLE_AFTER": "PT1S",
        }
    )
    yield platform
    await platforms.stop(platform)


async def _endpoint_behind_the_api(platform: Platform, customer: Customer, url: str) -> str:
    """An endpoint whose URL passed the API's check and now leads somewhere private (as a
    DNS name re-pointed at 127.0.0.1 would); written directly, as the API would refuse it."""
    endpoint_id = f"wh_private{customer.wallet_id[-8:]}"
    await platform.scalar(
        "INSERT INTO webhook_endpoints (id, wallet_id, url, secret)"
        " VALUES (:id, :w, :url, :s) RETURNING id",
        id=endpoint_id,
        w=customer.wallet_id,
        url=url,
        s=new_secret(),
    )
    return endpoint_id


async def test_a_delivery_to_a_private_address_is_refused_and_the_endpoint_disabled(
    locked_down: Platform, receiver: Receiver
) -> None:
    customer = await locked_down.customer()
    endpoint_id = await _endpoint_behind_the_api(
        locked_down, customer, receiver.url("/ok/ssrf").replace("127.0.0.1", "localhost")
    )

    async def ping() -> None:
        reply = await customer.request(
            "POST", f"/api/v1/webhooks/{endpoint_id}/test", json={"walletId": customer.wallet_id}
        )
        assert reply.status == 202, reply

    await ping()

    async def dead() -> dict[str, Any] | None:
        found = (await deliveries(customer, endpoint_id, status="dead")).body["data"]
        return found[0] if found else None

    delivery = await eventually(dead, timeout=30)
    assert {a["error"] for a in delivery["attemptLog"]} == {"egress refused: loopback_address"}
    await asyncio.sleep(0.5)
    await ping()  # still failing more than a second after the first failure

    async def disabled() -> dict[str, Any] | None:
        listed = await customer.request(
            "GET", "/api/v1/webhooks", params={"walletId": customer.wallet_id}
        )
        (endpoint,) = listed.body["data"]
        return endpoint if endpoint["status"] == "disabled" else None

    endpoint = await eventually(disabled, timeout=30)
    assert "egress refused: loopback_address" in endpoint["disabledReason"]
    assert endpoint["failingSince"]
    assert receiver.at("/ok/ssrf") == []
    enabled = await customer.request(
        "POST", f"/api/v1/webhooks/{endpoint_id}/enable", json={"walletId": customer.wallet_id}
    )
    assert enabled.status == 200, enabled
    assert enabled.body["status"] == "enabled" and enabled.body["disabledReason"] is None


async def test_a_dispatcher_killed_mid_delivery_loses_no_event(
    start_platform: StartPlatform, receiver: Receiver
) -> None:
    platform = await start_platform()
    customer = await platform.customer()
    await register(customer, receiver.url("/ok/killed"))
    replies = await asyncio.gather(
        *(customer.send(f"Kill {n}", f"+2567721300{n:02d}") for n in range(40))
    )
    assert all(r.status == 202 for r in replies)
    await received(receiver, "/ok/killed", 5)
    platform.stack.kill("webhooks")
    await asyncio.sleep(1)
    platform.stack.restart("webhooks")

    async def all_events() -> set[str] | None:
        ids = {r.headers["webhook-id"] for r in receiver.at("/ok/killed")}
        return ids if len(ids) >= 80 else None  # sent and delivered, for 40 messages

    ids = await eventually(all_events, timeout=60)
    assert len(ids) == 80
    types = {(r.json["data"]["messageId"], r.json["type"]) for r in receiver.at("/ok/killed")}
    assert len(types) == 80


async def test_two_dispatchers_share_the_deliveries_without_sending_any_twice(
    start_platform: StartPlatform, receiver: Receiver
) -> None:
    platform = await start_platform()
    copy = platform.stack.start_copy("webhooks")
    await asyncio.to_thread(platform.stack.wait_healthy, 30)
    customer = await platform.customer()
    await register(customer, receiver.url("/slow/shared"))
    replies = await asyncio.gather(
        *(customer.send(f"Shared {n}", f"+2567721310{n:02d}") for n in range(50))
    )
    assert all(r.status == 202 for r in replies)
    # A slow receiver keeps each dispatcher at its per-endpoint cap, so the other claims too.
    got = await received(receiver, "/slow/shared", 100, timeout=60)
    await asyncio.sleep(1)
    got = receiver.at("/slow/shared")
    assert len({r.headers["webhook-id"] for r in got}) == 100
    assert len(got) == 100  # no delivery attempted by both

    def attempts_in(name: str) -> int:
        return (platform.logs / f"{name}.log").read_text().count('"webhook.attempted"')

    assert attempts_in("webhooks") > 0 and attempts_in(copy) > 0


async def test_finished_deliveries_are_purged_after_the_retention_period(
    start_platform: StartPlatform, receiver: Receiver
) -> None:
    platform = await start_platform(
        extra_env={"WESENDALL_WEBHOOK_RETENTION": "PT2S", "WESENDALL_WEBHOOK_PURGE_INTERVAL": "0.5"}
    )
    customer = await platform.customer()
    done = await register(customer, receiver.url("/ok/purged"))
    reply = await customer.request(
        "POST", f"/api/v1/webhooks/{done['id']}/test", json={"walletId": customer.wallet_id}
    )
    assert reply.status == 202
    # A delivery still waiting for its next retry, a day old.
    await platform.scalar(
        "INSERT INTO webhook_deliveries (id, endpoint_id, wallet_id, event_id, event_type,"
        " payload, next_attempt_at, created_at)"
        " VALUES ('whd_waiting', :e, :w, 'evt_waiting', 'message.sent', '\\x7b7d',"
        "  now() + interval '1 hour', now() - interval '1 day') RETURNING id",
        e=done["id"],
        w=customer.wallet_id,
    )
    await received(receiver, "/ok/purged", 1)
    assert (await deliveries(customer, done["id"])).body["total"] == 2

    async def purged() -> bool:
        return (await deliveries(customer, done["id"])).body["total"] == 1

    await eventually(purged, timeout=20)
    assert await platform.scalar("SELECT count(*) FROM webhook_attempts") == 0
    # A delivery still being retried is never purged, however old.
    (kept,) = (await deliveries(customer, done["id"])).body["data"]
    assert kept["id"] == "whd_waiting" and kept["status"] == "pending"


async def test_events_become_deliveries_after_the_webhooks_database_connections_die(
    platform: Platform, customer: Customer, receiver: Receiver
) -> None:
    """Dead pooled connections are discarded, not handed to the next event again."""
    await register(customer, receiver.url("/ok/after-cut"), events=["message.delivered"])
    cut = await platform.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'wesendall-webhooks'"
    )
    assert cut > 0
    recipients = [f"+2567721280{n:02d}" for n in range(5)]
    for recipient in recipients:
        assert (await customer.send("After the cut", recipient)).status == 202
    got = await received(receiver, "/ok/after-cut", len(recipients), timeout=15)
    assert sorted(r.json["data"]["recipient"] for r in got) == recipients
