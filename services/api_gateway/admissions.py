"""Admitting sends: small ones in this process, large ones by billing over RPC.

Small sends (OTPs, alerts) are most of the requests and little of the work. Their
admission runs here, in a transaction per wallet for whatever arrived together, so none
of them pays two trips through the broker and a turn of another process's event loop
(make bench: a quarter more single sends/s, and a sixth less CPU per send, than the same
transaction run by billing over RPC). A wallet has at most one transaction in flight:
the transaction locks the wallet's row, so a second one would only wait for the first.
Its requests gather meanwhile and the next round admits them together, so a burst from
one customer costs a transaction per round, not per request, while the other wallets'
rounds take the free slots. A wallet whose last round was admitted in full is admitted
in one statement at that round's price (`charge.Quotes`), which checks the price and the
balance as it debits: one round trip instead of four, and the wallet's row locked only
while Postgres runs it.

Large sends (campaigns) travel alone to `billing-bulk`, whose event loop can take a
thousand-row write without delaying anyone's OTP here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.admission import Admission, AdmitReply, AdmitRequest, AdmitResult
from libs.common.admission.charge import Quotes, admit_and_publish
from libs.common.admission.settings import AdmissionSettings
from libs.common.amqp import Topology
from libs.common.errors import InternalError, SendFailed
from libs.common.logging import get_logger
from libs.common.outbox import BILLING, OutboxRelay
from libs.common.rpc import RpcClient, RpcTimeout, RpcUnavailable

log = get_logger(__name__)

# One wallet's round: its admissions in, their results out, in the same order.
Round = Callable[[str, list[Admission]], Awaitable[list[AdmitResult]]]


@dataclass(slots=True)
class _Waiting:
    admission: Admission
    future: asyncio.Future[AdmitResult]


class WalletRounds:
    """Admissions in rounds: at most one round in flight per wallet, `concurrency` in all."""

    def __init__(self, run: Round, *, concurrency: int, round_max: int) -> None:
        self._run = run
        self._slots = concurrency
        self._round_max = round_max
        # Admissions waiting, by wallet; wallets waiting with no round in flight, in the
        # order they became ready (a dict as an ordered set).
        self._waiting: dict[str, list[_Waiting]] = {}
        self._ready: dict[str, None] = {}
        self._busy: set[str] = set()
        self._running: set[asyncio.Task[None]] = set()
        self.dispatched = 0

    async def admit(self, admission: Admission) -> AdmitResult:
        future: asyncio.Future[AdmitResult] = asyncio.get_running_loop().create_future()
        wallet_id = admission.wallet_id
        self._waiting.setdefault(wallet_id, []).append(_Waiting(admission, future))
        if wallet_id not in self._busy:
            self._ready[wallet_id] = None
            self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._ready and self._slots > 0:
            wallet_id = next(iter(self._ready))
            del self._ready[wallet_id]
            queue = self._waiting[wallet_id]
            batch = queue[: self._round_max]
            if len(queue) > self._round_max:
                del queue[: self._round_max]  # the rest waits for the wallet's next round
            else:
                del self._waiting[wallet_id]
            self._busy.add(wallet_id)
            self._slots -= 1
            self.dispatched += 1
            task = asyncio.get_running_loop().create_task(self._round(wallet_id, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _round(self, wallet_id: str, batch: list[_Waiting]) -> None:
        try:
            results = await self._run(wallet_id, [w.admission for w in batch])
        except Exception as error:  # noqa: BLE001 — every waiter gets the same error
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
        else:
            for waiting, result in zip(batch, results, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(result)
        finally:
            self._busy.discard(wallet_id)
            self._slots += 1
            if wallet_id in self._waiting:
                self._ready[wallet_id] = None
            self._dispatch()


class Admissions:
    """The gateway's way to admit a send, whatever its size."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: AdmissionSettings,
        topology: Topology,
        broker: AbstractRobustConnection,
        rpc: RpcClient,
        *,
        direct_max_recipients: int,
        concurrency: int,
        round_max: int,
        rpc_timeout: float,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._topology = topology
        self._broker = broker
        self._rpc = rpc
        self._direct_max_recipients = direct_max_recipients
        self._rpc_timeout = rpc_timeout
        # Publishes the send jobs of what this process committed; a row it could not
        # publish (or whose publish this process did not live to see) is left to
        # billing's relays, which take such rows once their claim runs out.
        self.relay = OutboxRelay(sessions, broker, origin=BILLING, name="api_gateway")
        self.quotes = Quotes()
        self.rounds = WalletRounds(self._admit_wallet, concurrency=concurrency, round_max=round_max)

    async def admit(self, admission: Admission) -> AdmitResult:
        """The admission's outcome; SendFailed / InternalError when it cannot be had."""
        if len(admission.recipients) > self._direct_max_recipients:
            return await self._by_billing(admission)
        if not self._broker.connected.is_set():
            # Admitted now, the send would wait in the outbox for the broker: a login code
            # is worth nothing late. The customer is told at once, and charged nothing.
            raise SendFailed()
        return await self.rounds.admit(admission)

    async def _admit_wallet(self, wallet_id: str, admissions: list[Admission]) -> list[AdmitResult]:
        try:
            return await admit_and_publish(
                self._sessions,
                [self.relay],
                self._settings,
                self._topology,
                wallet_id,
                admissions,
                quotes=self.quotes,
            )
        except Exception as error:
            log.exception("admission.failed", wallet_id=wallet_id, admissions=len(admissions))
            raise InternalError() from error

    async def _by_billing(self, admission: Admission) -> AdmitResult:
        request = AdmitRequest(admissions=[admission], deadline=time.time() + self._rpc_timeout)
        try:
            body = await self._rpc.call(
                self._topology.billing_bulk_rpc_queue,
                request.model_dump_json().encode(),
                timeout=self._rpc_timeout,
            )
        except RpcUnavailable as error:
            log.warning("billing.unavailable", error=str(error))
            raise SendFailed() from error
        except RpcTimeout as error:
            log.warning("billing.timeout", error=str(error))
            raise InternalError() from error
        results = AdmitReply.model_validate_json(body).results
        if len(results) != 1:
            raise InternalError()
        return results[0]
