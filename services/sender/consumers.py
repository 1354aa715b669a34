"""Send jobs in: decode, drop what already has an outcome, and hand the rest to the scheduler.

A job the broker redelivers (its worker died) may have been partly submitted: its still
queued messages are held until a receipt proves them sent, and only then resubmitted.
"""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.admission import SendJob
from libs.common.db import autocommit
from libs.common.logging import get_logger
from libs.common.outbox import PUBLISH_ATTEMPT
from services.sender import store
from services.sender.scheduler import CarrierScheduler
from services.sender.work import JobState, Registry, Work
from services.sender.writer import OutcomeWriter

log = get_logger(__name__)


class JobConsumer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: Registry,
        schedulers: dict[str, CarrierScheduler],
        writer: OutcomeWriter,
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._schedulers = schedulers
        self._writer = writer

    async def on_job(self, message: AbstractIncomingMessage) -> None:
        try:
            job = SendJob.model_validate_json(message.body)
        except ValidationError:
            log.error("sender.job_invalid", message_id=message.message_id)
            await message.reject(requeue=False)  # to the dead-letter queue, for an operator
            return
        scheduler = self._schedulers.get(job.carrier)
        if scheduler is None:
            log.error("sender.carrier_unknown", carrier=job.carrier, job_id=job.job_id)
            await message.nack(requeue=True)
            return
        # A first publish of a job nobody has seen yet needs no look-up; a redelivered
        # job, or one the outbox published again after a relay died, may be partly done.
        states: dict[str, str] = {}
        attempt = (message.headers or {}).get(PUBLISH_ATTEMPT, 1)
        if message.redelivered or not isinstance(attempt, int) or attempt > 1:
            try:
                async with autocommit(self._sessions) as connection:
                    states = await store.message_states(connection, [m.id for m in job.messages])
            except Exception:
                log.exception("sender.job_state_failed", job_id=job.job_id)
                await asyncio.sleep(1)
                await message.nack(requeue=True)
                return
        await self._schedule(message, job, states, scheduler)

    async def _schedule(
        self,
        message: AbstractIncomingMessage,
        job: SendJob,
        states: dict[str, str],
        scheduler: CarrierScheduler,
    ) -> None:
        state = JobState(job.job_id, pending=0, ack=lambda: _ack_soon(message, job.job_id))
        fresh: list[Work] = []
        for item in job.messages:
            if states.get(item.id, "queued") != "queued":
                continue  # already has an outcome: a duplicate or redelivered job
            existing = self._registry.get(item.id)
            if existing is not None:
                existing.jobs.append(state)
                state.pending += 1
                continue
            work = Work(
                message=item,
                text=job.texts[item.batch_id],
                carrier=job.carrier,
                lane=job.lane,
                expires_at=job.expires_at,
                jobs=[state],
            )
            self._registry.add(work)
            state.pending += 1
            fresh.append(work)
        log.info(
            "sender.job_received",
            job_id=job.job_id,
            carrier=job.carrier,
            lane=job.lane,
            messages=len(job.messages),
            to_send=len(fresh),
            redelivered=bool(message.redelivered),
            request_ids=sorted({t.request_id for t in job.texts.values() if t.request_id}),
        )
        if state.pending == 0:
            state.acked = True
            await message.ack()
            return
        if not message.redelivered:
            for work in fresh:
                scheduler.submit(work)
            return
        for work in fresh:
            scheduler.hold(work)
        # Receipts parked while no process knew these messages may prove they were sent.
        try:
            await self._writer.recover_parked(job.carrier, [w.message.recipient for w in fresh])
        except Exception:
            log.exception("sender.recover_receipts_failed", carrier=job.carrier)


def _ack_soon(message: AbstractIncomingMessage, job_id: str) -> None:
    async def ack() -> None:
        try:
            await message.ack()
        except Exception as error:  # noqa: BLE001 — the channel died: the job comes back, deduped
            log.warning("sender.ack_failed", job_id=job_id, error=repr(error))
        else:
            log.info("sender.job_done", job_id=job_id)

    asyncio.get_running_loop().create_task(ack())
