"""Request/reply over RabbitMQ with direct reply-to (`amq.rabbitmq.reply-to`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelInvalidStateError, DeliveryError

from libs.common.logging import get_logger

log = get_logger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
# Set in the headers a handler receives when the broker delivers the request again
# (its first consumer died before acking): the work may already be done.
REDELIVERED = "x-redelivered"


class RpcUnavailable(Exception):
    """The request never reached the broker: nothing was done on the other side."""


class RpcTimeout(Exception):
    """The request was handed over but no reply came in time: the outcome is unknown."""


class RpcClient:
    """Publishes requests and matches replies by correlation id."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self._channel: AbstractChannel | None = None
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._lock = asyncio.Lock()

    async def _ensure_channel(self) -> AbstractChannel:
        if self._channel is not None and not self._channel.is_closed:
            return self._channel
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                channel = await self._connection.channel()
                # Replies come to the channel that published the request, in no-ack mode.
                # Declared (passively) so a reconnected channel consumes replies again.
                queue = await channel.declare_queue(DIRECT_REPLY_TO, passive=True)
                await queue.consume(self._on_reply, no_ack=True)
                self._channel = channel
        return self._channel

    async def start(self) -> None:
        await self._ensure_channel()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def call(
        self,
        queue: str,
        body: bytes,
        *,
        timeout: float,
        headers: dict[str, Any] | None = None,
    ) -> bytes:
        """Send one request; raises RpcUnavailable (not delivered) or RpcTimeout (unknown)."""
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            channel = self._channel
            if channel is None or channel.is_closed:
                # Only a missing channel is waited for: `wait_for` runs its coroutine as a
                # task, one more turn of a busy event loop before every request went out.
                try:
                    channel = await asyncio.wait_for(self._ensure_channel(), timeout=timeout)
                except Exception as error:
                    self._channel = None
                    raise RpcUnavailable(repr(error)) from error
            try:
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        correlation_id=correlation_id,
                        reply_to=DIRECT_REPLY_TO,
                        headers=headers or {},
                        # A request nobody took in time is dropped by the broker, so a
                        # late consumer never acts on an answer the caller gave up on.
                        expiration=timeout,
                    ),
                    routing_key=queue,
                    mandatory=True,
                    timeout=timeout,
                )
            except (ChannelInvalidStateError, DeliveryError) as error:
                # The channel was closed before sending, or the broker refused the message.
                self._channel = None
                raise RpcUnavailable(repr(error)) from error
            except Exception as error:
                # Sent, but unconfirmed (a timeout, a connection lost mid-publish): the
                # request may still be processed, so the outcome is unknown.
                self._channel = None
                raise RpcTimeout(f"publish unconfirmed: {error!r}") from error
            try:
                return await asyncio.wait_for(future, timeout=timeout)
            except TimeoutError as error:
                raise RpcTimeout(f"no reply from {queue} within {timeout}s") from error
        finally:
            self._pending.pop(correlation_id, None)


Handler = Callable[[bytes, dict[str, Any]], Awaitable[bytes]]


class RpcServer:
    """Consumes requests from one queue; each reply goes out before its request is acked."""

    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, handler: Handler) -> None:
        self._channel = channel
        self._queue = queue
        self._queue_name = queue.name
        self._handler = handler
        self._tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self, consumer_priority: int = 0) -> None:
        """Consume; the broker gives a request to the highest-priority consumer with room."""
        self._tag = await self._queue.consume(
            self._on_request, arguments={"x-priority": consumer_priority}
        )

    async def stop(self, timeout: float = 30) -> None:
        """Take no new requests and let the ones in hand finish, so none is done twice."""
        if self._tag is not None:
            await self._queue.cancel(self._tag)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("rpc.stop_timeout", queue=self._queue_name, in_flight=self._in_flight)

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._process(message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        headers = {**(message.headers or {}), REDELIVERED: bool(message.redelivered)}
        try:
            reply = await self._handler(message.body, headers)
        except Exception:
            log.exception("rpc.handler_failed", queue=self._queue_name)
            # A request that crashes the handler must not loop forever: the queue's
            # delivery limit dead-letters it after a few attempts.
            await message.nack(requeue=True)
            return
        if message.reply_to:
            try:
                await self._channel.default_exchange.publish(
                    aio_pika.Message(
                        reply,
                        content_type="application/json",
                        correlation_id=message.correlation_id,
                    ),
                    routing_key=message.reply_to,
                    mandatory=False,
                )
            except Exception as error:  # noqa: BLE001 — the caller is gone; the work is done
                log.warning("rpc.reply_failed", queue=self._queue_name, error=repr(error))
        await message.ack()
