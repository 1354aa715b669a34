"""The gateway's side of the admission RPC, with natural batching.

Small admissions that arrive while earlier RPCs are in flight wait for a free slot and
then ride one RPC together: no added latency when idle, far fewer broker round trips
under load. A wallet has at most one RPC in flight: billing admits a wallet's requests
under its row lock, so a second RPC for it would only wait for the first and halve the
batches; its requests gather for the next one instead, and a free slot goes to other
wallets, which a busy wallet then cannot hold up. Large admissions (campaigns) travel
alone, on a queue of their own that another billing process consumes, so an OTP never
waits for one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from libs.common.admission import Admission, AdmitReply, AdmitRequest, AdmitResult
from libs.common.errors import InternalError, SendFailed
from libs.common.logging import get_logger
from libs.common.rpc import RpcClient, RpcTimeout, RpcUnavailable

log = get_logger(__name__)


@dataclass(slots=True)
class _Waiting:
    admission: Admission
    future: asyncio.Future[AdmitResult]


class BillingClient:
    def __init__(
        self,
        rpc: RpcClient,
        queue: str,
        bulk_queue: str,
        *,
        timeout: float,
        batch_max_recipients: int,
        batch_size: int,
        max_in_flight: int,
    ) -> None:
        self._rpc = rpc
        self._queue = queue
        self._bulk_queue = bulk_queue
        self._timeout = timeout
        self._batch_max_recipients = batch_max_recipients
        self._batch_size = batch_size
        self._slots = max_in_flight
        # Admissions waiting for an RPC, by wallet, wallets in the order they began to wait.
        self._waiting: dict[str, list[_Waiting]] = {}
        # Wallets with admissions in an RPC in flight.
        self._busy: set[str] = set()
        self.rpcs = 0

    async def admit(self, admission: Admission) -> AdmitResult:
        """Billing's answer for one admission; SendFailed / InternalError when it cannot say."""
        if len(admission.recipients) > self._batch_max_recipients:
            (result,) = await self._call(self._bulk_queue, [admission])
            return result
        future: asyncio.Future[AdmitResult] = asyncio.get_running_loop().create_future()
        wallet_id = admission.wallet_id
        self._waiting.setdefault(wallet_id, []).append(_Waiting(admission, future))
        if self._slots > 0 and wallet_id not in self._busy:
            self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._waiting and self._slots > 0:
            batch: list[_Waiting] = []
            for wallet_id in list(self._waiting):
                if wallet_id in self._busy:
                    continue
                queue = self._waiting[wallet_id]
                room = self._batch_size - len(batch)
                batch += queue[:room]
                if len(queue) > room:
                    del queue[:room]  # the rest keeps its place for the wallet's next RPC
                    break
                del self._waiting[wallet_id]
                if len(batch) == self._batch_size:
                    break
            if not batch:
                return  # every waiting wallet has an RPC in flight; its end dispatches again
            self._busy.update(w.admission.wallet_id for w in batch)
            self._slots -= 1
            asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[_Waiting]) -> None:
        try:
            results = await self._call(self._queue, [w.admission for w in batch])
        except Exception as error:  # noqa: BLE001 — every waiter gets the same error
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
        else:
            for waiting, result in zip(batch, results, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(result)
        finally:
            self._busy.difference_update(w.admission.wallet_id for w in batch)
            self._slots += 1
            self._dispatch()

    async def _call(self, queue: str, admissions: list[Admission]) -> list[AdmitResult]:
        request = AdmitRequest(admissions=admissions, deadline=time.time() + self._timeout)
        self.rpcs += 1
        try:
            body = await self._rpc.call(
                queue, request.model_dump_json().encode(), timeout=self._timeout
            )
        except RpcUnavailable as error:
            log.warning("billing.unavailable", error=str(error), admissions=len(admissions))
            raise SendFailed() from error
        except RpcTimeout as error:
            log.warning("billing.timeout", error=str(error), admissions=len(admissions))
            raise InternalError() from error
        reply = AdmitReply.model_validate_json(body)
        if len(reply.results) != len(admissions):
            raise InternalError()
        return reply.results
