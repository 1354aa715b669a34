"""Messages a carrier keeps refusing for now go through the delay queues (TTL, then back)."""

from __future__ import annotations

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from libs.common.amqp import RETRY_DELAYS, Topology
from libs.common.ids import new_id
from libs.common.logging import get_logger
from services.sender.work import Work

log = get_logger(__name__)


class Deferrer:
    def __init__(self, connection: AbstractRobustConnection, topology: Topology) -> None:
        self._connection = connection
        self._topology = topology
        self._channel: AbstractChannel | None = None

    async def defer(self, work: Work) -> bool:
        """Publish the message as a one-message job to the next delay queue; True if confirmed."""
        deferrals = work.message.deferrals
        delay = RETRY_DELAYS[min(deferrals, len(RETRY_DELAYS) - 1)]
        job_id = new_id("job")
        body = orjson.dumps(
            {
                "job_id": job_id,
                "carrier": work.carrier,
                "lane": work.lane,
                "expires_at": work.expires_at.isoformat(),
                "texts": {work.message.batch_id: work.text.model_dump()},
                "messages": [{**work.message.model_dump(), "deferrals": deferrals + 1}],
            }
        )
        try:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(on_return_raises=True)
            exchange = await self._channel.get_exchange(
                self._topology.retry_exchange(delay), ensure=False
            )
            await exchange.publish(
                aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=job_id,
                ),
                routing_key=self._topology.send_routing_key(work.carrier, work.lane),
                mandatory=True,
                timeout=10,
            )
        except Exception as error:  # noqa: BLE001 — kept in hand and retried here
            log.warning("sender.defer_failed", message_id=work.id, error=repr(error))
            self._channel = None
            return False
        log.info(
            "sender.deferred",
            message_id=work.id,
            carrier=work.carrier,
            delay=delay,
            deferrals=deferrals + 1,
            request_id=work.text.request_id,
        )
        return True
