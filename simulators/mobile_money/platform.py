"""The simulated wallet platform: stores requests, lets payers answer, sends callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from simulators.mobile_money import bodies
from simulators.mobile_money.callbacks import CallbackSender
from simulators.mobile_money.logs import log
from simulators.mobile_money.sandbox import (
    Behaviour,
    airtel_money_id,
    default_behaviour,
    e164,
    financial_transaction_id,
)
from simulators.mobile_money.settings import SimulatorSettings
from simulators.mobile_money.state import (
    PaymentRequest,
    Phase,
    Provider,
    RequestStore,
    RuntimeConfig,
    new_callback_log,
)


class WalletPlatform:
    """Both providers' back ends: one store of requests, one set of payers."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.config = self._initial_config()
        self.requests = RequestStore(settings.max_requests)
        self.callbacks = CallbackSender(settings.callback_timeout, new_callback_log())
        self._overrides: dict[str, Behaviour] = {}
        self._answers: dict[tuple[Provider, str], asyncio.TimerHandle] = {}

    def _initial_config(self) -> RuntimeConfig:
        return RuntimeConfig(
            approval_delay=self.settings.approval_delay,
            callback_copies=self.settings.callback_copies,
        )

    async def start(self) -> None:
        """Open what the platform needs to call merchants back."""
        await self.callbacks.start()

    async def close(self) -> None:
        """Forget pending payer answers and stop sending callbacks."""
        for handle in self._answers.values():
            handle.cancel()
        self._answers.clear()
        await self.callbacks.close()

    # Payers

    def behaviour_for(self, national: str) -> Behaviour:
        """What this payer will do with the next prompt."""
        return self._overrides.get(national, default_behaviour(national))

    def set_behaviour(self, national: str, behaviour: Behaviour) -> None:
        """Make this payer behave this way from the next request on."""
        self._overrides[national] = behaviour

    def reset_behaviour(self, national: str) -> bool:
        """Back to the sandbox default; False if nothing was overridden."""
        return self._overrides.pop(national, None) is not None

    def overrides(self) -> dict[str, str]:
        """Overridden payers as E.164 -> behaviour."""
        return {e164(national): str(behaviour) for national, behaviour in self._overrides.items()}

    # Failure injection

    def take_injected_failure(self) -> bool:
        """True if this creation call must fail without creating anything."""
        if self.config.fail_next_requests > 0:
            self.config.fail_next_requests -= 1
            return True
        return False

    def take_lost_response(self) -> bool:
        """True if this accepted creation call must hide its success from the caller."""
        if self.config.accept_then_fail_response > 0:
            self.config.accept_then_fail_response -= 1
            return True
        return False

    # Requests

    def get(self, provider: Provider, reference: str) -> PaymentRequest | None:
        """A stored request, or None."""
        return self.requests.get(provider, reference)

    def find(self, provider: str | None, msisdn: str | None) -> Iterable[PaymentRequest]:
        """Stored requests of this provider and payer (either may be None), oldest first."""
        for request in self.requests:
            if provider and request.provider != provider:
                continue
            if msisdn and request.msisdn != msisdn:
                continue
            yield request

    def create(
        self,
        provider: Provider,
        reference: str,
        *,
        external_id: str,
        national: str,
        amount: int,
        currency: str,
        callback_url: str | None,
        submitted: dict[str, Any] | None = None,
    ) -> PaymentRequest:
        """Store a new request and prompt the payer, who answers after `approval_delay`."""
        behaviour = self.behaviour_for(national)
        request = PaymentRequest(
            provider=provider,
            reference=reference,
            external_id=external_id,
            national=national,
            msisdn=e164(national),
            amount=amount,
            currency=currency,
            callback_url=callback_url,
            behaviour=behaviour,
            submitted=submitted or {},
        )
        for dropped in self.requests.add(request):
            handle = self._answers.pop((dropped.provider, dropped.reference), None)
            if handle is not None:
                handle.cancel()
        if behaviour is not Behaviour.NEVER:
            key = (provider, reference)
            self._answers[key] = asyncio.get_running_loop().call_later(
                self.config.approval_delay, self._answer, key
            )
        log.info(
            "payment.requested",
            provider=provider,
            reference=reference,
            msisdn=request.msisdn,
            amount=amount,
            behaviour=str(behaviour),
        )
        return request

    def _answer(self, key: tuple[Provider, str]) -> None:
        self._answers.pop(key, None)
        request = self.requests.get(*key)
        if request is None or request.phase is not Phase.PENDING:
            return
        if request.behaviour is Behaviour.APPROVE:
            request.phase = Phase.SUCCESSFUL
            request.provider_id = (
                financial_transaction_id() if request.provider == "mtn" else airtel_money_id()
            )
        else:
            request.phase = Phase.FAILED
        log.info(
            "payment.settled",
            provider=request.provider,
            reference=request.reference,
            status=request.status,
            provider_id=request.provider_id,
        )
        self._call_back(request)

    def _call_back(self, request: PaymentRequest) -> None:
        if self.config.drop_callbacks:
            return
        copies = self.config.callback_copies
        if request.provider == "mtn":
            # MTN calls back only when the merchant named a URL, with the status GET body.
            if request.callback_url:
                self.callbacks.deliver(
                    request, "PUT", request.callback_url, bodies.mtn_status(request), copies
                )
            return
        url = self.settings.airtel_callback_url
        if url:
            secret = (
                self.settings.airtel_client_secret
                if self.settings.airtel_authenticated_callbacks
                else None
            )
            self.callbacks.deliver(
                request, "POST", url, bodies.airtel_callback(request, secret), copies
            )

    def reset(self) -> dict[str, int]:
        """Back to the state at start: no requests, callbacks, overrides or changed knobs."""
        for handle in self._answers.values():
            handle.cancel()
        self._answers.clear()
        cleared = {
            "requests": self.requests.clear(),
            "callbacks": len(self.callbacks.attempts),
            "payers": len(self._overrides),
        }
        self.callbacks.attempts.clear()
        self._overrides.clear()
        self.config = self._initial_config()
        return cleared

    def stats(self) -> dict[str, Any]:
        """Counts for the start and stop log lines."""
        by_status: dict[str, int] = {}
        for request in self.requests:
            name = f"{request.provider}.{request.status}"
            by_status[name] = by_status.get(name, 0) + 1
        return {
            "requests": len(self.requests),
            "by_status": by_status,
            "callbacks_in_flight": self.callbacks.in_flight,
        }
