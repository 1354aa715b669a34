"""The platform starts, answers health checks, and carries one message end to end."""

from __future__ import annotations

from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform


async def test_healthz_is_ok_when_every_service_is_up(
    platform: Platform, customer: Customer
) -> None:
    reply = await customer.request("GET", "/healthz", auth=False)
    assert reply.status == 200
    assert reply.body["status"] == "ok"
    assert set(reply.body["checks"]) >= {"postgres", "rabbitmq", "billing", "sender.mtn"}


async def test_a_message_is_delivered_end_to_end(platform: Platform, customer: Customer) -> None:
    reply = await customer.send("Hello from Wesendall", "0772123456")
    assert reply.status == 202, reply
    message_id = reply.body["messages"][0]["id"]

    async def delivered() -> bool:
        history = await customer.history()
        return any(
            m["id"] == message_id and m["status"] == "delivered" for m in history.body["data"]
        )

    await eventually(delivered)
    received = await platform.simulator_messages("+256772123456")
    assert any(m["text"] == "Hello from Wesendall" for m in received)
