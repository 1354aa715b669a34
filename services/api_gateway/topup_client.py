"""The gateway's side of top-ups: start one over RPC, pass provider callbacks on to billing."""

from __future__ import annotations

import time

import orjson

from libs.common.errors import InternalError, SendFailed
from libs.common.logging import get_logger
from libs.common.mobile_money import StartDeposit, StartDepositReply
from libs.common.rpc import RpcClient, RpcTimeout, RpcUnavailable
from services.api_gateway.publisher import Publisher

log = get_logger(__name__)


class TopUpClient:
    def __init__(
        self,
        rpc: RpcClient,
        publisher: Publisher,
        *,
        start_queue: str,
        checks_queue: str,
        timeout: float,
    ) -> None:
        self._rpc = rpc
        self._publisher = publisher
        self._start_queue = start_queue
        self._checks_queue = checks_queue
        self._timeout = timeout

    async def start(self, request: StartDeposit) -> StartDepositReply:
        """Billing's answer; SendFailed when the broker is away, InternalError on no answer."""
        request.deadline = time.time() + self._timeout
        try:
            body = await self._rpc.call(
                self._start_queue, request.model_dump_json().encode(), timeout=self._timeout
            )
        except RpcUnavailable as error:
            log.warning("topup.billing_unavailable", error=str(error))
            raise SendFailed("The top-up could not be started; nothing was charged.") from error
        except RpcTimeout as error:
            log.warning("topup.billing_timeout", error=str(error))
            raise InternalError() from error
        return StartDepositReply.model_validate_json(body)

    async def request_check(self, deposit_id: str, provider: str) -> None:
        """Ask billing to look up the deposit's status now (persistent, confirmed publish)."""
        await self._publisher.publish(
            orjson.dumps({"deposit_id": deposit_id, "provider": provider}),
            routing_key=self._checks_queue,
        )
