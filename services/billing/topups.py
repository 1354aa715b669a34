"""Top-ups: start a collection, confirm it with the provider, reconcile the silent ones.

Nothing here trusts a callback's body. A callback only makes billing ask the provider's
status endpoint sooner; the status answer alone decides the transition, and the
transition's `WHERE status = 'pending'` makes a duplicate callback, a callback storm or a
reconciler racing a callback credit at most once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.amqp import Topology
from libs.common.db import session_scope
from libs.common.logging import get_logger
from libs.common.mobile_money import (
    StartDeposit,
    StartDepositReply,
    deposit_view,
    mtn_callback_url,
)
from libs.common.outbox import OutboxRelay
from services.billing import deposits
from services.billing.mobile_money.base import (
    Collection,
    Outcome,
    PaymentProvider,
    ProviderRefused,
    ProviderStatus,
    ProviderUnavailable,
)
from services.billing.settings import BillingSettings

log = get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class TopUps:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: BillingSettings,
        topology: Topology,
        providers: dict[str, PaymentProvider],
        relays: list[OutboxRelay],
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._topology = topology
        self._providers = providers
        self._relays = relays
        self._background: set[asyncio.Task[None]] = set()

    async def start(self, request: StartDeposit) -> StartDepositReply:
        """Create the deposit (once per id) and ask the provider; answer within a few seconds."""
        if time.time() > request.deadline:
            log.warning("deposit.start_past_deadline", deposit_id=request.deposit_id)
            return StartDepositReply(ok=False, error="deadline")
        try:
            async with session_scope(self._sessions) as session:
                row = await deposits.create_deposit(
                    session,
                    request,
                    str(uuid.uuid4()),
                    expires_in=self._settings.deposit_expiry,
                    first_check_in=self._settings.deposit_retry_after,
                )
        except deposits.WalletNotFound:
            return StartDepositReply(ok=False, error="wallet_not_found")
        if row["status"] == "pending" and row["initiated_at"] is None:
            task = asyncio.create_task(self._initiate(row))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            try:
                await asyncio.wait_for(asyncio.shield(task), self._settings.deposit_initiate_wait)
            except TimeoutError:
                log.info("deposit.initiate_slow", deposit_id=row["id"])
        async with session_scope(self._sessions) as session:
            current = await deposits.load(session, row["id"])
        assert current is not None
        return StartDepositReply(ok=True, deposit=deposit_view(current))

    async def _initiate(self, row: RowMapping) -> None:
        provider = self._providers[row["provider"]]
        collection = Collection(
            reference=row["provider_reference"],
            deposit_id=row["id"],
            phone_number=row["phone_number"],
            amount=row["amount"],
            description=row["description"],
        )
        try:
            await provider.initiate(
                collection, mtn_callback_url(self._settings.mobile_money, row["id"])
            )
        except ProviderRefused as refusal:
            log.warning("deposit.refused", deposit_id=row["id"], reason=refusal.reason)
            await self._end(row["id"], "failed", refusal.reason)
        except ProviderUnavailable as error:
            # It may have arrived: the reconciler asks for its status before sending again.
            log.warning("deposit.initiate_unknown", deposit_id=row["id"], error=str(error))
            async with session_scope(self._sessions) as session:
                await deposits.schedule(
                    session, row["id"], _now() + self._settings.deposit_retry_after
                )
        else:
            log.info("deposit.initiated", deposit_id=row["id"], provider=row["provider"])
            async with session_scope(self._sessions) as session:
                await deposits.mark_initiated(
                    session, row["id"], _now() + self._settings.deposit_first_check
                )

    async def check(self, deposit_id: str, *, why: str) -> None:
        """Ask the provider where a pending deposit stands and act on the answer."""
        async with session_scope(self._sessions) as session:
            row = await deposits.load(session, deposit_id)
        if row is None:
            log.warning("deposit.check_unknown", deposit_id=deposit_id, why=why)
            return
        if row["status"] == "expired" and why == "callback":
            await self._late_callback(row)
            return
        if row["status"] != "pending":
            log.info("deposit.check_ended", deposit_id=deposit_id, status=row["status"], why=why)
            return
        try:
            status = await self._providers[row["provider"]].status(row["provider_reference"])
        except ProviderUnavailable as error:
            log.warning("deposit.status_unknown", deposit_id=deposit_id, error=str(error))
            await self._reschedule(row)
            return
        log.info("deposit.status", deposit_id=deposit_id, outcome=status.outcome.value, why=why)
        await self._apply(row, status)

    async def _late_callback(self, row: RowMapping) -> None:
        """A callback for a deposit we expired: if the payer did pay, an operator must know.

        Transitions leave `pending` only, so nothing is credited here; the error names the
        deposit for a manual credit (`wesendall admin adjust`).
        """
        try:
            status = await self._providers[row["provider"]].status(row["provider_reference"])
        except ProviderUnavailable:
            return
        if status.outcome is Outcome.SUCCESSFUL:
            log.error(
                "deposit.paid_after_expiry",
                deposit_id=row["id"],
                wallet_id=row["wallet_id"],
                amount=row["amount"],
                provider_transaction_id=status.transaction_id,
            )

    async def _apply(self, row: RowMapping, status: ProviderStatus) -> None:
        deposit_id = row["id"]
        expired = _now() >= row["expires_at"]
        if status.outcome is Outcome.SUCCESSFUL:
            if status.amount is not None and status.amount != row["amount"]:
                log.error(
                    "deposit.amount_mismatch",
                    deposit_id=deposit_id,
                    ours=row["amount"],
                    provider=status.amount,
                )
                await self._end(deposit_id, "failed", "amount_mismatch")
                return
            async with session_scope(self._sessions) as session:
                credited = await deposits.succeed(
                    session, self._topology, deposit_id, status.transaction_id
                )
            self._wake_relays(credited)
        elif status.outcome is Outcome.FAILED:
            await self._end(deposit_id, "failed", status.reason or "FAILED")
        elif expired:
            reason = "not_received" if status.outcome is Outcome.NOT_FOUND else "not_approved"
            await self._end(deposit_id, "expired", reason)
        elif status.outcome is Outcome.NOT_FOUND:
            # The request never reached the provider: send it again, same reference.
            await self._initiate(row)
        else:
            if row["initiated_at"] is None:
                async with session_scope(self._sessions) as session:
                    await deposits.mark_initiated(session, deposit_id, self._next_check(row))
            else:
                await self._reschedule(row)

    async def _end(self, deposit_id: str, status: str, reason: str) -> None:
        async with session_scope(self._sessions) as session:
            ended = await deposits.end_unpaid(session, self._topology, deposit_id, status, reason)
        self._wake_relays(ended)

    def _next_check(self, row: RowMapping) -> datetime:
        first = self._settings.deposit_first_check.total_seconds()
        ceiling = self._settings.deposit_max_check_interval.total_seconds()
        delay = min(first * 2 ** max(row["checks"] - 1, 0), ceiling)
        return min(_now() + timedelta(seconds=delay), max(row["expires_at"], _now()))

    async def _reschedule(self, row: RowMapping) -> None:
        async with session_scope(self._sessions) as session:
            await deposits.schedule(session, row["id"], self._next_check(row))

    def _wake_relays(self, changed: bool) -> None:
        if changed:
            for relay in self._relays:
                relay.wake()

    async def reconcile_once(self) -> int:
        """Check every deposit that is due; returns how many were checked."""
        async with session_scope(self._sessions) as session:
            due = await deposits.claim_due(
                session,
                self._settings.reconcile_batch,
                lease=timedelta(seconds=self._settings.mobile_money.request_timeout * 3),
            )
        limit = asyncio.Semaphore(self._settings.reconcile_concurrency)

        async def one(row: RowMapping) -> None:
            async with limit:
                try:
                    await self.check(row["id"], why="reconcile")
                except Exception:  # one bad deposit must not stop the others
                    log.exception("deposit.reconcile_failed", deposit_id=row["id"])

        await asyncio.gather(*(one(row) for row in due))
        return len(due)

    async def reconcile_forever(self) -> None:
        """Poll providers for deposits whose callback never came; expire the stale ones."""
        while True:
            try:
                checked = await self.reconcile_once()
            except Exception:  # the database may be restarting; try again
                log.exception("deposit.reconcile_round_failed")
                checked = 0
            if checked < self._settings.reconcile_batch:
                await asyncio.sleep(self._settings.reconcile_interval)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for provider in self._providers.values():
            await provider.close()
