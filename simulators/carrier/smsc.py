"""The simulated SMSC: binds, submit_sm decisions, stored messages, receipts to schedule.

One coroutine pulls every server event. The submit path does no logging, no awaiting and
no task creation: it answers the submit, stores the message and hands any receipt to the
dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import smpp34
import structlog

from simulators.carrier.dispatcher import ReceiptDispatcher
from simulators.carrier.encoding import Part, decode_text, read_tlvs, split_udh
from simulators.carrier.ids import MessageIds
from simulators.carrier.protocol import ESM_UDHI, ESME_RINVDSTADR, ESME_RSYSERR, ESME_RTHROTTLED
from simulators.carrier.reassembly import Reassembler
from simulators.carrier.receipts import Receipt
from simulators.carrier.sandbox import (
    REJECTED,
    THROTTLED_ONCE,
    UNDELIVERED,
    Outcome,
    SandboxRules,
    normalise_msisdn,
)
from simulators.carrier.settings import SimulatorSettings
from simulators.carrier.state import Counters, RuntimeConfig
from simulators.carrier.store import MessageStore, StoredMessage

log = structlog.get_logger("simulators.carrier")

T = TypeVar("T")

_SANDBOX_NUMBERS = frozenset({REJECTED, UNDELIVERED, THROTTLED_ONCE})
# registered_delivery bits 0-1 (SMPP 3.4 §5.2.17): 1 = receipt on success or failure,
# 2 = on failure only.
_RECEIPT_REQUESTED = 0x03
_FAILURE_ONLY = 0x02
# Deep enough that bind and unbind events are never dropped: smpp34 discards them
# (try_send) when the server's event channel is full.
_EVENT_CAPACITY = 1 << 18
_SMSC_SYSTEM_ID = "SMSC"


class Session:
    """A bound ESME and the carrier it is served as."""

    __slots__ = ("carrier", "esme", "system_id", "transmits")

    def __init__(self, esme: smpp34.Esme, carrier: str) -> None:
        self.esme = esme
        self.system_id = esme.system_id
        self.carrier = carrier
        self.transmits = False  # set by its first submit_sm: a TX or TRX bind


class CarrierSmsc:
    """The SMPP side of the simulator, and the state the inspection API reads."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.config = RuntimeConfig(
            receipt_delay=settings.receipt_delay, submit_delay=settings.submit_delay
        )
        self.counters = Counters()
        self.store = MessageStore(settings.max_messages)
        self.listening = False
        self._server = smpp34.Server(
            _ip_address(settings.smpp_host),
            settings.smpp_port,
            system_id=_SMSC_SYSTEM_ID,
            inbound_capacity=_EVENT_CAPACITY,
        )
        self._loop = asyncio.get_running_loop()
        self._sessions: dict[str, Session] = {}
        self._rules = SandboxRules()
        self._ids = MessageIds(settings.id_format, settings.receipt_id_format)
        self._reassembler = Reassembler()
        self._dispatcher = ReceiptDispatcher(self.config, self.counters, settings.receipt_window)

    async def start(self) -> None:
        """Open the SMPP port."""
        await self._server.start()
        self.listening = True

    async def serve(self) -> None:
        """Handle server events until the server stops."""
        next_event = self._server.next
        while True:
            try:
                event = await next_event()
            except smpp34.SmppError:  # "server stopped"
                return
            if isinstance(event, smpp34.SubmitSmEvent):
                try:
                    self._on_submit(event)
                except Exception:
                    log.exception("submit.failed", session_id=event.session_id)
                    with contextlib.suppress(RuntimeError):  # it was answered before failing
                        event.reject(ESME_RSYSERR)
            elif isinstance(event, smpp34.Esme):
                self._on_bound(event)
            else:
                self._on_unbound(event.session_id)

    async def stop(self) -> None:
        """Unbind every session, close the port and let smpp34's threads settle."""
        self.listening = False
        self._dispatcher.close()
        unbinds = [asyncio.ensure_future(s.esme.unbind()) for s in self._sessions.values()]
        if unbinds:
            await asyncio.wait(unbinds, timeout=1.0)
        await self._server.stop()
        # smpp34's tokio threads can crash the interpreter at exit if still busy.
        await asyncio.sleep(0.2)

    # -- sessions -------------------------------------------------------------------------

    def _on_bound(self, esme: smpp34.Esme) -> None:
        carrier = self.settings.carrier_for(esme.system_id)
        self._sessions[esme.session_id] = Session(esme, carrier)
        self._dispatcher.session_bound(esme)
        log.info(
            "session.bound",
            system_id=esme.system_id,
            carrier=carrier,
            session_id=esme.session_id,
            can_receive=esme.can_receive,
        )

    def _on_unbound(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        self._dispatcher.session_unbound(session_id)
        log.info(
            "session.unbound",
            system_id=session.system_id if session else None,
            session_id=session_id,
            receipts_pending=self._dispatcher.outstanding,
        )

    # -- submit_sm ------------------------------------------------------------------------

    def _on_submit(self, event: smpp34.SubmitSmEvent) -> None:
        """Answer one submit_sm per the sandbox rules; store it; schedule its receipt."""
        counters = self.counters
        counters.submits += 1
        now = time.time()
        session = self._sessions.get(event.session_id)
        if session is None:  # smpp34 drops bind events only if its channel overflows
            system_id, carrier = "", "unknown"
        else:
            system_id, carrier = session.system_id, session.carrier
            if not session.transmits:
                session.transmits = True
                self._dispatcher.session_transmits(event.session_id)
        recipient = normalise_msisdn(event.destination_addr)
        outcome = Outcome.DELIVER
        if recipient in _SANDBOX_NUMBERS:
            content = event.short_message + b"".join(t.value for t in event.tlvs)
            outcome = self._rules.outcome(recipient, content)
            if outcome is Outcome.REJECT:
                counters.rejected += 1
                self._answer(event.reject, ESME_RINVDSTADR)
                return
            if outcome is Outcome.THROTTLE:
                counters.throttled += 1
                self._answer(event.reject, ESME_RTHROTTLED)
                return
        message_id, receipt_id = self._ids.issue(carrier)
        counters.accepted += 1
        self._answer(event.accept, message_id)
        snippet = self._store(event, recipient, carrier, system_id, message_id, now)
        registered = event.registered_delivery & _RECEIPT_REQUESTED
        delivered = outcome is Outcome.DELIVER
        if registered and not (registered == _FAILURE_ONLY and delivered):
            self._schedule_receipt(event, system_id, receipt_id, delivered, snippet, now)

    def _store(
        self,
        event: smpp34.SubmitSmEvent,
        recipient: str,
        carrier: str,
        system_id: str,
        message_id: str,
        now: float,
    ) -> str:
        """Store the message once all its parts are in; return this part's text for a receipt."""
        short_message = event.short_message
        part: Part | None
        # UDH parsing only when the UDHI bit says there is one; TLVs only when there are some.
        if event.esm_class & ESM_UDHI:
            part, body = split_udh(short_message)
        else:
            tlvs = event.tlvs
            part, body = read_tlvs(tlvs, short_message) if tlvs else (None, short_message)
        data_coding = event.data_coding
        if part is None:
            text = decode_text(body, data_coding)
            self.store.add(StoredMessage(recipient, text, carrier, message_id, now, 1))
            return text
        key = (system_id, event.source_addr, event.destination_addr, part.ref)
        whole = self._reassembler.add(key, part, data_coding, message_id)
        if whole is not None:
            text = decode_text(whole.body, whole.data_coding)
            message = StoredMessage(
                recipient, text, carrier, whole.first_message_id, now, whole.parts
            )
            self.store.add(message)
        # Receipts quote at most 20 characters: 40 octets cover them in any coding.
        return decode_text(part.body[:40], data_coding)

    def _schedule_receipt(
        self,
        event: smpp34.SubmitSmEvent,
        system_id: str,
        receipt_id: str,
        delivered: bool,
        text: str,
        now: float,
    ) -> None:
        receipt = Receipt(
            system_id=system_id,
            session_id=event.session_id,
            receipt_id=receipt_id,
            source_addr=event.destination_addr,
            source_ton=event.dest_addr_ton,
            source_npi=event.dest_addr_npi,
            destination_addr=event.source_addr,
            destination_ton=event.source_addr_ton,
            destination_npi=event.source_addr_npi,
            submitted_at=now,
            delivered=delivered,
            snippet=text[:20],
        )
        config = self.config
        # With a slow SMSC the receipt still follows its submit_sm_resp, as on a real one.
        self._dispatcher.schedule(receipt, config.submit_delay + config.receipt_delay)

    def _answer(self, respond: Callable[[T], None], argument: T) -> None:
        delay = self.config.submit_delay
        if delay:
            self._loop.call_later(delay, respond, argument)
        else:
            respond(argument)

    # -- inspection -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Sessions per carrier, traffic counters and what is stored or pending."""
        binds = Counter(session.carrier for session in self._sessions.values())
        return {
            "binds": dict(binds),
            **self.counters.as_json(),
            "receipts_pending": self._dispatcher.outstanding,
            "messages": len(self.store),
            "duplicates": self.store.duplicates,
            "partial_messages": self._reassembler.pending,
        }

    def reset(self) -> int:
        """Forget stored messages, counters and throttle memory; return messages dropped."""
        self.counters.reset()
        self._rules.reset()
        return self.store.clear()

    def reconfigure(self, changes: dict[str, Any]) -> None:
        """Apply `POST /config` changes (validated by RuntimeConfig)."""
        self.config.update(changes)
        self._dispatcher.resume()


def _ip_address(host: str) -> str:
    """smpp34 only takes an IP literal: resolve a name such as `localhost` once, at start."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return socket.gethostbyname(host)
    return host
