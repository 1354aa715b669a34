"""The request id a send came with follows its messages into every status event: `sent`
from the job the sender holds, `delivered` from a receipt the sender matched in the
database."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aio_pika.abc import AbstractIncomingMessage

from libs.common.amqp import Topology, connect
from libs.common.settings import CommonSettings
from tests.platform.conftest import Platform


async def test_status_events_carry_the_request_id_of_the_send(platform: Platform) -> None:
    customer = await platform.customer()
    settings = CommonSettings(amqp_url=platform.config.amqp_url)
    connection = await connect(settings, "wesendall-tests")
    events: list[dict[str, Any]] = []
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(
            Topology(platform.config.amqp_namespace).events_exchange
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for event_type in ("message.sent", "message.delivered"):
            await queue.bind(exchange, event_type)

        async def hear(message: AbstractIncomingMessage) -> None:
            async with message.process():
                events.extend(orjson.loads(message.body))

        await queue.consume(hear)
        reply = await customer.send(
            "Your code is 4321",
            ["0772123456", "0752123456"],
            headers={"X-Request-Id": "req-followed-0001"},
        )
        assert reply.status == 202, reply
        ids = {m["id"] for m in reply.body["messages"]}

        def mine() -> list[dict[str, Any]]:
            return [e for e in events if e["data"]["message_id"] in ids]

        for _ in range(100):
            if len(mine()) == 4:
                break
            await asyncio.sleep(0.1)
    finally:
        await connection.close()

    assert sorted(e["type"] for e in mine()) == ["message.delivered"] * 2 + ["message.sent"] * 2
    assert {e["request_id"] for e in mine()} == {"req-followed-0001"}
