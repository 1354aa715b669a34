"""One SMPP 3.4 bind to a carrier's SMSC: kept bound, windowed, paced, receipts handed over.

smpp34 does the wire protocol; this module adds what it leaves to us (measured on 1.5.0):
it does not enforce its window_size, never reconnects, and may crash the interpreter at exit
unless the client is stopped and given a moment before the event loop closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import smpp34
import structlog

from libs.common.throttle import TokenBucket
from services.sender.carriers.base import (
    NO_RESPONSE,
    ReceiptCallback,
    SubmitKind,
    SubmitOutcome,
    classify,
    command_status_name,
)
from services.sender.carriers.smpp_config import (
    MAX_ADDRESS_DIGITS,
    MAX_SHORT_MESSAGE,
    SmppBindConfig,
    relative_validity,
)
from services.sender.receipts import ESM_CLASS_DELIVERY_RECEIPT, ESM_CLASS_TYPE_MASK, parse_receipt

__all__ = ["SmppBind", "SmppBindConfig", "relative_validity"]

log = structlog.get_logger(__name__)

# How long a throttled answer (ESME_RTHROTTLED / ESME_RMSGQFUL) holds the whole bind back.
THROTTLE_PAUSE = 0.3
# How often one part is offered again after throttled answers before the caller is told.
THROTTLE_RETRIES = 20
# A session that lived this long counts as stable: the next reconnect starts the backoff over.
_STABLE_SESSION_FACTOR = 2.0
# Grace for the client to stop its Rust runtime threads before the loop may close.
_STOP_GRACE = 0.2


class _Session:
    """One bound connection; replaced, never reused, after it drops."""

    def __init__(self, smsc: smpp34.Smsc, bound_at: float) -> None:
        self.smsc, self.bound_at = smsc, bound_at


class SmppBind:
    """A CarrierLink over one SMPP bind, reconnecting by itself until closed."""

    def __init__(self, name: str, config: SmppBindConfig, on_receipt: ReceiptCallback) -> None:
        self.name = name
        self.config = config
        self._on_receipt = on_receipt
        self._window = asyncio.Semaphore(config.window)
        self._bucket = TokenBucket(config.rate)
        self._session: _Session | None = None
        self._up = asyncio.Event()
        self._closed = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._outstanding = 0
        self._log = log.bind(carrier=name, system_id=config.system_id)

    @property
    def outstanding(self) -> int:
        """submit_sm sent on this bind and not yet answered."""
        return self._outstanding

    @property
    def can_submit(self) -> bool:
        """A receiver-only bind carries receipts but cannot submit (SMPP 3.4 §2.2)."""
        return self.config.bind_type != "RX"

    async def start(self) -> None:
        """Start the supervisor that binds, reads and rebinds in the background."""
        if self._supervisor is None and not self._closed.is_set():
            self._supervisor = asyncio.create_task(
                self._supervise(), name=f"smpp-{self.name}-{self.config.system_id}"
            )

    def is_up(self) -> bool:
        """Whether the bind is currently bound."""
        return self._up.is_set()

    async def wait_up(self, timeout: float) -> bool:
        """Wait up to timeout seconds for the bind; False if it is not up (or is closing)."""
        if self._up.is_set():
            return True
        if self._closed.is_set() or timeout <= 0:
            return False
        waiters = [asyncio.ensure_future(event.wait()) for event in (self._up, self._closed)]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self._up.is_set() and not self._closed.is_set()

    async def submit(
        self,
        destination: str,
        parts: Sequence[bytes],
        *,
        data_coding: int,
        esm_class: int,
        validity: timedelta | None,
    ) -> SubmitOutcome:
        """Send each part as its own submit_sm, in order, stopping at the first failure."""
        if not parts:
            raise ValueError("a message has at least one part")
        if not self.can_submit:
            return SubmitOutcome(SubmitKind.TRANSIENT, [], NO_RESPONSE, "ESME_RINVBNDSTS")
        # Checked before anything is sent, so a bad part never leaves a message half sent.
        digits = "".join(ch for ch in destination if ch in string.digits)
        if not digits or len(digits) > MAX_ADDRESS_DIGITS:
            return _refused("ESME_RINVDSTADR")
        if any(len(part) > MAX_SHORT_MESSAGE for part in parts):
            return _refused("ESME_RINVMSGLEN")
        fields: dict[str, Any] = {
            "source_addr": self.config.source_addr,
            "source_addr_ton": self.config.source_ton,
            "source_addr_npi": self.config.source_npi,
            "dest_addr_ton": self.config.dest_ton,
            "dest_addr_npi": self.config.dest_npi,
            "esm_class": esm_class,
            "data_coding": data_coding,
            "registered_delivery": self.config.registered_delivery,
        }
        if validity is not None:
            fields["validity_period"] = relative_validity(validity)
        message_ids: list[str] = []
        for part in parts:
            # A throttled part is offered again here, after the bind's pause: going back to
            # part 1 would hand the carrier the parts it already took a second time.
            for _ in range(THROTTLE_RETRIES):
                outcome = await self._submit_part(digits, part, fields)
                if outcome.kind is not SubmitKind.THROTTLED:
                    break
            if outcome.kind is not SubmitKind.OK:
                return SubmitOutcome(
                    outcome.kind, message_ids, outcome.command_status, outcome.error_code
                )
            message_ids.extend(outcome.carrier_message_ids)
        return SubmitOutcome(SubmitKind.OK, message_ids, 0, None)

    async def close(self) -> None:
        """Unbind, stop the supervisor and the client; the bind cannot be restarted."""
        if self._closed.is_set():
            return
        self._closed.set()
        session = self._session
        if session is not None:
            try:
                await asyncio.wait_for(asyncio.ensure_future(session.smsc.unbind()), timeout=5)
            except (smpp34.SmppError, TimeoutError) as exc:
                self._log.warning("smpp.unbind_failed", error=str(exc))
        if self._supervisor is not None:
            # The reader sees Disconnected right after unbind; cancel only a stuck supervisor.
            done, _ = await asyncio.wait({self._supervisor}, timeout=2)
            if not done:
                self._supervisor.cancel()
                await asyncio.gather(self._supervisor, return_exceptions=True)
        await asyncio.sleep(_STOP_GRACE)
        self._log.info("smpp.closed")

    async def _submit_part(self, digits: str, part: bytes, fields: dict[str, Any]) -> SubmitOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.response_timeout
        while True:
            if not await self.wait_up(deadline - loop.time()):
                return SubmitOutcome(SubmitKind.TRANSIENT, [], NO_RESPONSE, "not_bound")
            async with self._window:
                await self._bucket.acquire()
                session = self._session
                if session is None:
                    continue  # dropped while we queued; nothing was sent, wait for the rebind
                return await self._send(session, digits, part, fields)

    async def _send(
        self, session: _Session, digits: str, part: bytes, fields: dict[str, Any]
    ) -> SubmitOutcome:
        self._outstanding += 1
        try:
            async with asyncio.timeout(self.config.response_timeout):
                response = await session.smsc.submit_sm(digits, part, **fields)
        except TimeoutError:
            self._log.warning("smpp.submit_timed_out", timeout=self.config.response_timeout)
            return SubmitOutcome(SubmitKind.CONNECTION_LOST, [], NO_RESPONSE, "response_timeout")
        except Exception as exc:  # noqa: BLE001 - SmppError, or a Rust panic surfaced as Exception
            # smpp34 raises SmppError("ESME_RSYSERR ...") for a submit outstanding when the
            # session drops, and after its own 30 s response timer: either way it may have
            # reached the SMSC. A real SMSC error arrives as a response, not as an exception.
            self._log.warning("smpp.submit_lost", error=str(exc), error_type=type(exc).__name__)
            return SubmitOutcome(SubmitKind.CONNECTION_LOST, [], NO_RESPONSE, "connection_lost")
        finally:
            self._outstanding -= 1
        status = response.command_status
        kind = classify(status)
        if kind is SubmitKind.OK:
            if not response.message_id:
                # message_id is mandatory (§4.4.2); without it no receipt can ever match.
                self._log.warning("smpp.submit_without_message_id")
            return SubmitOutcome(kind, [response.message_id or ""], status, None)
        if kind is SubmitKind.THROTTLED:
            self._bucket.pause(THROTTLE_PAUSE)
            self._log.info("smpp.throttled", command_status=status, pause=THROTTLE_PAUSE)
        return SubmitOutcome(kind, [], status, command_status_name(status))

    async def _supervise(self) -> None:
        failures = 0
        while not self._closed.is_set():
            session = await self._bind(failures)
            if session is None:
                failures += 1
            else:
                failures = 0 if self._stable(session) else failures + 1
            if not self._closed.is_set():
                await self._wait_before_reconnect(failures)

    async def _bind(self, failures: int) -> _Session | None:
        """Bind, read until the session ends, and tear it down; the session, or None."""
        cfg = self.config
        client = smpp34.Client(
            cfg.host,
            cfg.port,
            cfg.system_id,
            cfg.password,
            bind_type=cfg.bind_type,
            system_type=cfg.system_type,
            window_size=cfg.window,  # only logged by smpp34; the semaphore is the real window
            connect_timeout_ms=int(cfg.connect_timeout * 1000),
        )
        try:
            try:
                # connect_timeout_ms covers TCP connect and the bind response; the outer
                # timeout only guards against the library never answering at all.
                smsc = await asyncio.wait_for(
                    asyncio.ensure_future(client.connect()), timeout=cfg.connect_timeout + 5
                )
            except Exception as exc:  # noqa: BLE001 - the supervisor must outlive any failure
                self._log.warning("smpp.bind_failed", error=str(exc), attempt=failures + 1)
                return None
            loop = asyncio.get_running_loop()
            session = self._session = _Session(smsc, loop.time())
            self._up.set()
            self._log.info("smpp.bound", attempt=failures + 1, session_id=smsc.session_id)
            await self._read(session)
            if not self._closed.is_set():
                self._log.warning(
                    "smpp.disconnected", uptime=round(loop.time() - session.bound_at, 3)
                )
            return session
        finally:
            self._up.clear()
            self._session = None
            try:
                await client.stop()
            except Exception as exc:  # noqa: BLE001 - nothing left to do but carry on
                self._log.warning("smpp.stop_failed", error=str(exc))

    async def _read(self, session: _Session) -> None:
        """Drain deliver_sm without pause: smpp34 NAKs them when the reader falls behind."""
        while True:
            try:
                event = await session.smsc.next()
            except Exception as exc:  # noqa: BLE001 - any read failure ends the session
                self._log.warning("smpp.read_failed", error=str(exc))
                return
            if isinstance(event, smpp34.Disconnected):
                return
            self._deliver(event)

    def _deliver(self, event: smpp34.DeliverSmEvent) -> None:
        tlvs = [(tlv.tag, tlv.value) for tlv in event.tlvs]
        receipt = parse_receipt(event.esm_class, event.source_addr, event.short_message, tlvs)
        if receipt is None:
            if event.esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_DELIVERY_RECEIPT:
                self._log.warning("smpp.receipt_unparsed", raw=event.short_message[:200])
            else:
                self._log.info("smpp.deliver_ignored", esm_class=event.esm_class)
            return
        try:
            self._on_receipt(receipt)
        except Exception:  # noqa: BLE001
            # A failing consumer must not stop the reader: the SMSC would be NAKed next.
            self._log.exception("smpp.receipt_callback_failed")

    def _stable(self, session: _Session) -> bool:
        uptime = asyncio.get_running_loop().time() - session.bound_at
        return uptime >= _STABLE_SESSION_FACTOR * self.config.reconnect_max

    async def _wait_before_reconnect(self, failures: int) -> None:
        # Exponential backoff with full jitter, floored at reconnect_min, so that many binds
        # dropped together by one SMSC restart do not rebind in lockstep.
        cfg = self.config
        ceiling = min(cfg.reconnect_max, cfg.reconnect_min * 2 ** max(failures, 1))
        delay = random.uniform(cfg.reconnect_min, ceiling)
        self._log.info("smpp.reconnect_scheduled", attempt=failures + 1, delay=round(delay, 3))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=delay)


def _refused(error_code: str) -> SubmitOutcome:
    """A message refused here, before anything was sent: the SMSC would refuse it too."""
    return SubmitOutcome(SubmitKind.PERMANENT, [], NO_RESPONSE, error_code)
