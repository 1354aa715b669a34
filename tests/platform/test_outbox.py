"""The outbox's publish-after-commit path: staged rows go out at once from the process that
committed them, and a relay takes them over only when that process did not finish.

Rows here use an origin of their own, so the platform's relays never touch them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from libs.common.amqp import Topology, connect
from libs.common.db import transaction
from libs.common.ids import new_id
from libs.common.outbox import PUBLISH_ATTEMPT, OutboxMessage, OutboxRelay, stage
from libs.common.settings import CommonSettings
from tests.platform.client import eventually
from tests.platform.conftest import Platform


@pytest.fixture
async def amqp(platform: Platform) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(CommonSettings(amqp_url=platform.config.amqp_url), "outbox-test")
    yield connection
    await connection.close()


async def _listen(
    platform: Platform, connection: AbstractRobustConnection
) -> tuple[str, str, AbstractQueue]:
    """A fresh origin, and a queue bound to the events under a fresh routing key."""
    origin, key = new_id("origin"), new_id("key")
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(Topology(platform.config.amqp_namespace).events_exchange, key)
    return origin, key, queue


async def _received(queue: AbstractQueue, count: int) -> list[aio_pika.abc.AbstractMessage]:
    got: list[aio_pika.abc.AbstractMessage] = []

    async def more() -> list[Any] | None:
        message = await queue.get(fail=False, no_ack=True)
        if message is not None:
            got.append(message)
        return got if len(got) >= count else None

    return await eventually(more, timeout=15, interval=0.05)


def _relay(platform: Platform, connection: AbstractRobustConnection, origin: str) -> OutboxRelay:
    events = Topology(platform.config.amqp_namespace).events_exchange
    return OutboxRelay(
        platform.sessions,
        connection,
        origin=origin,
        best_effort_exchanges=frozenset({events}),
        poll_interval=0.2,
        name="test",
    )


def _messages(platform: Platform, origin: str, key: str, count: int) -> list[OutboxMessage]:
    events = Topology(platform.config.amqp_namespace).events_exchange
    return [
        OutboxMessage(origin=origin, exchange=events, routing_key=key, body=b'{"n": %d}' % n)
        for n in range(count)
    ]


async def _rows(platform: Platform, origin: str) -> int:
    return int(await platform.scalar("SELECT count(*) FROM outbox WHERE origin = :o", o=origin))


async def test_staged_rows_are_published_once_committed_and_then_deleted(
    platform: Platform, amqp: AbstractRobustConnection
) -> None:
    origin, key, queue = await _listen(platform, amqp)
    relay = _relay(platform, amqp, origin)
    async with transaction(platform.sessions) as connection:
        staged = await stage(connection, _messages(platform, origin, key, 3))
    assert [s.attempts for s in staged] == [1, 1, 1]
    assert len({s.id for s in staged}) == 3

    relay.publish_committed(staged)
    received = await _received(queue, 3)
    assert sorted(m.body for m in received) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    # First attempts: consumers trust them without looking anything up.
    assert {(m.headers or {})[PUBLISH_ATTEMPT] for m in received} == {1}
    assert {m.message_id for m in received} == {s.message_id for s in staged}
    await relay.settle()
    assert await _rows(platform, origin) == 0


async def test_rows_a_dead_process_staged_are_published_by_a_relay_as_possible_repeats(
    platform: Platform, amqp: AbstractRobustConnection
) -> None:
    origin, key, queue = await _listen(platform, amqp)
    async with transaction(platform.sessions) as connection:
        # The process that stages these dies before publishing: nobody calls publish_committed.
        await stage(connection, _messages(platform, origin, key, 2), lease=timedelta(seconds=1))
    relay = _relay(platform, amqp, origin)
    # Within the claim, no relay takes the rows: the process that staged them might be
    # publishing them right now.
    assert await relay.drain_once() == 0
    running = asyncio.create_task(relay.run())
    try:
        received = await _received(queue, 2)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    # Marked as a second attempt: a consumer checks what the first may already have done.
    assert {(m.headers or {})[PUBLISH_ATTEMPT] for m in received} == {2}
    assert await _rows(platform, origin) == 0


async def test_staged_rows_of_a_rolled_back_transaction_never_exist(
    platform: Platform, amqp: AbstractRobustConnection
) -> None:
    origin, key = new_id("origin"), new_id("key")
    with pytest.raises(RuntimeError):
        async with transaction(platform.sessions) as connection:
            await stage(connection, _messages(platform, origin, key, 2))
            raise RuntimeError("the state change failed")
    assert await _rows(platform, origin) == 0


async def test_a_staged_row_the_broker_refuses_is_released_to_the_relay(
    platform: Platform, amqp: AbstractRobustConnection
) -> None:
    origin = new_id("origin")
    topology = Topology(platform.config.amqp_namespace)
    # A command (mandatory) that no queue is bound for: the broker returns it.
    message = OutboxMessage(
        origin=origin, exchange=topology.send_exchange, routing_key=new_id("nowhere"), body=b"{}"
    )
    async with transaction(platform.sessions) as connection:
        staged = await stage(connection, [message])
    relay = _relay(platform, amqp, origin)
    relay.publish_committed(staged)
    await relay.settle()
    # Still there, no longer claimed: the relay's next round tries it again at once.
    row = (
        await platform.rows(
            "SELECT attempts, claimed_until FROM outbox WHERE origin = :o", o=origin
        )
    )[0]
    assert row.attempts == 1 and row.claimed_until is None
    await platform.scalar("DELETE FROM outbox WHERE origin = :o RETURNING 1", o=origin)
