"""Thin consumers: decode, open a session scope per wallet or message, call the service."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import orjson
import structlog
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.admission import Admission, AdmitReply, AdmitRequest, AdmitResult
from libs.common.admission.charge import PastDeadline, admit_and_publish
from libs.common.amqp import Topology
from libs.common.db import session_scope
from libs.common.events import REFUNDED_EVENTS, decode_events
from libs.common.logging import get_logger
from libs.common.mobile_money import StartDeposit
from libs.common.outbox import OutboxRelay
from libs.common.rpc import REDELIVERED
from services.billing.ledger import refund_messages
from services.billing.settings import BillingSettings
from services.billing.topups import TopUps

log = get_logger(__name__)


class BillingConsumers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: BillingSettings,
        topology: Topology,
        relays: list[OutboxRelay],
        topups: TopUps,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._topology = topology
        self._relays = relays
        self._topups = topups

    async def handle_admit(self, body: bytes, headers: dict[str, Any]) -> bytes:
        """Admit every request in the message, one transaction per wallet, wallets in parallel."""
        request = AdmitRequest.model_validate_json(body)
        if time.time() > request.deadline:
            # The gateway has already answered; admitting now would charge for a send the
            # customer was told failed.
            log.warning("billing.admit_past_deadline", admissions=len(request.admissions))
            return _reply([_failed(a, "deadline") for a in request.admissions])
        by_wallet: dict[str, list[Admission]] = defaultdict(list)
        for admission in request.admissions:
            by_wallet[admission.wallet_id].append(admission)
        # A redelivered request (billing died before acking it) may have been admitted.
        again = bool(headers.get(REDELIVERED))
        groups = await asyncio.gather(
            *(
                self._admit_wallet(wallet_id, group, again, request.deadline)
                for wallet_id, group in by_wallet.items()
            )
        )
        results = {r.batch_id: r for group in groups for r in group}
        return _reply([results[a.batch_id] for a in request.admissions])

    async def _admit_wallet(
        self, wallet_id: str, admissions: list[Admission], again: bool, deadline: float
    ) -> list[AdmitResult]:
        structlog.contextvars.bind_contextvars(request_id=admissions[0].request_id)
        try:
            return await admit_and_publish(
                self._sessions,
                self._relays,
                self._settings,
                self._topology,
                wallet_id,
                admissions,
                check_existing=again,
                deadline=deadline,
            )
        except PastDeadline:
            # Rolled back: the gateway answers this customer an error and charges nothing.
            log.warning(
                "billing.admit_past_deadline", wallet_id=wallet_id, admissions=len(admissions)
            )
            return [_failed(a, "deadline") for a in admissions]
        except Exception:
            log.exception("billing.admit_failed", wallet_id=wallet_id, admissions=len(admissions))
            return [_failed(a, "internal_error") for a in admissions]

    async def handle_refunds(self, message: AbstractIncomingMessage) -> None:
        """Refund failed and expired messages; the ack waits for the commit."""
        async with message.process(requeue=True):
            # A message of the sender's may hold other events too: only these are read.
            events = decode_events(message.body, REFUNDED_EVENTS)
            async with session_scope(self._sessions) as session:
                await refund_messages(session, events)

    async def handle_start_deposit(self, body: bytes, headers: dict[str, Any]) -> bytes:
        """Start a top-up; a redelivered request finds its deposit by id and starts nothing new."""
        request = StartDeposit.model_validate_json(body)
        structlog.contextvars.bind_contextvars(
            request_id=request.request_id, deposit_id=request.deposit_id
        )
        reply = await self._topups.start(request)
        return reply.model_dump_json().encode()

    async def handle_deposit_check(self, message: AbstractIncomingMessage) -> None:
        """A provider called back about a deposit: ask its status now; ack once acted on."""
        async with message.process(requeue=True):
            deposit_id = orjson.loads(message.body)["deposit_id"]
            structlog.contextvars.bind_contextvars(deposit_id=deposit_id)
            await self._topups.check(deposit_id, why="callback")


def _failed(admission: Admission, error: Any) -> AdmitResult:
    return AdmitResult(batch_id=admission.batch_id, ok=False, error=error)


def _reply(results: list[AdmitResult]) -> bytes:
    return AdmitReply(results=results).model_dump_json().encode()
