"""The simulated SMSC: binds, submit_sm decisions, stored messages, receipts to schedule.

The SMPP server (`server`) calls in here for every submit_sm, synchronously. The submit
path does no logging, no awaiting and no task creation: it decides the answer, stores the
message and hands any receipt to the dispatcher.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import structlog

from simulators.carrier import wire
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
from simulators.carrier.server import Session, SmppServer
from simulators.carrier.settings import SimulatorSettings
from simulators.carrier.state import Counters, RuntimeConfig
from simulators.carrier.store import MessageStore, StoredMessage

log = structlog.get_logger("simulators.carrier")

_SANDBOX_NUMBERS = frozenset({REJECTED, UNDELIVERED, THROTTLED_ONCE})
# registered_delivery bits 0-1 (SMPP 3.4 §5.2.17): 1 = receipt on success or failure,
# 2 = on failure only.
_RECEIPT_REQUESTED = 0x03
_FAILURE_ONLY = 0x02
_SMSC_SYSTEM_ID = "SMSC"


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
        self._loop = asyncio.get_running_loop()
        self._server = SmppServer(self, settings.smpp_host, settings.smpp_port, _SMSC_SYSTEM_ID)
        self._sessions: dict[int, Session] = {}
        self._rules = SandboxRules()
        self._ids = MessageIds(settings.id_format, settings.receipt_id_format)
        self._reassembler = Reassembler()
        self._dispatcher = ReceiptDispatcher(self.config, self.counters, settings.receipt_window)

    async def start(self) -> None:
        """Open the SMPP port."""
        await self._server.start()
        self.listening = True

    async def stop(self) -> None:
        """Stop delivering, unbind every session and close the port."""
        self.listening = False
        self._dispatcher.close()
        await self._server.stop()

    # -- sessions -------------------------------------------------------------------------

    def session_bound(self, session: Session) -> None:
        """A new bind: serve it as its carrier and, if it receives, deliver receipts to it."""
        session.carrier = self.settings.carrier_for(session.system_id)
        self._sessions[session.session_id] = session
        self._dispatcher.session_bound(session)
        log.info(
            "session.bound",
            system_id=session.system_id,
            carrier=session.carrier,
            session_id=session.session_id,
            bind_type=session.bind_type,
        )

    def session_unbound(self, session: Session) -> None:
        """A session unbound or dropped: its receipts go to a sibling or wait for one."""
        self._sessions.pop(session.session_id, None)
        self._dispatcher.session_unbound(session.session_id)
        log.info(
            "session.unbound",
            system_id=session.system_id,
            session_id=session.session_id,
            receipts_pending=self._dispatcher.outstanding,
        )

    # -- submit_sm ------------------------------------------------------------------------

    def submit_sm(self, session: Session, sequence: int, submit: wire.SubmitSm) -> bytes | None:
        """The submit_sm_resp, or None when a submit_delay holds it back."""
        try:
            resp = self._decide(session, sequence, submit)
        except Exception:
            log.exception("submit.failed", session_id=session.session_id)
            resp = wire.submit_sm_error(sequence, ESME_RSYSERR)
        delay = self.config.submit_delay
        if not delay:
            return resp
        self._loop.call_later(delay, session.send, resp)
        return None

    def _decide(self, session: Session, sequence: int, submit: wire.SubmitSm) -> bytes:
        """Answer one submit_sm per the sandbox rules; store it; schedule its receipt."""
        counters = self.counters
        counters.submits += 1
        now = time.time()
        carrier = session.carrier
        recipient = normalise_msisdn(submit.destination_addr)
        outcome = Outcome.DELIVER
        if recipient in _SANDBOX_NUMBERS:
            outcome = self._rules.outcome(recipient, submit.short_message + submit.optional)
            if outcome is Outcome.REJECT:
                counters.rejected += 1
                return wire.submit_sm_error(sequence, ESME_RINVDSTADR)
            if outcome is Outcome.THROTTLE:
                counters.throttled += 1
                return wire.submit_sm_error(sequence, ESME_RTHROTTLED)
        message_id, receipt_id = self._ids.issue(carrier)
        snippet = self._store(submit, recipient, carrier, session.system_id, message_id, now)
        counters.accepted += 1
        registered = submit.registered_delivery & _RECEIPT_REQUESTED
        delivered = outcome is Outcome.DELIVER
        if registered and not (registered == _FAILURE_ONLY and delivered):
            self._schedule_receipt(submit, session, receipt_id, delivered, snippet, now)
        return wire.submit_sm_resp(sequence, message_id)

    def _store(
        self,
        submit: wire.SubmitSm,
        recipient: str,
        carrier: str,
        system_id: str,
        message_id: str,
        now: float,
    ) -> str:
        """Store the message once all its parts are in; return this part's text for a receipt."""
        short_message = submit.short_message
        part: Part | None
        # UDH parsing only when the UDHI bit says there is one; TLVs only when there are some.
        if submit.esm_class & ESM_UDHI:
            part, body = split_udh(short_message)
        elif submit.optional:
            part, body = read_tlvs(wire.read_tlvs(submit.optional), short_message)
        else:
            part, body = None, short_message
        data_coding = submit.data_coding
        if part is None:
            text = decode_text(body, data_coding)
            self.store.add(StoredMessage(recipient, text, carrier, message_id, now, 1))
            return text
        key = (system_id, submit.source_addr, submit.destination_addr, part.ref)
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
        submit: wire.SubmitSm,
        session: Session,
        receipt_id: str,
        delivered: bool,
        text: str,
        now: float,
    ) -> None:
        receipt = Receipt(
            system_id=session.system_id,
            session_id=session.session_id,
            receipt_id=receipt_id,
            source_addr=submit.destination_addr,
            source_ton=submit.dest_addr_ton,
            source_npi=submit.dest_addr_npi,
            destination_addr=submit.source_addr,
            destination_ton=submit.source_addr_ton,
            destination_npi=submit.source_addr_npi,
            submitted_at=now,
            delivered=delivered,
            snippet=text[:20],
        )
        config = self.config
        # With a slow SMSC the receipt still follows its submit_sm_resp, as on a real one.
        self._dispatcher.schedule(receipt, config.submit_delay + config.receipt_delay)

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
