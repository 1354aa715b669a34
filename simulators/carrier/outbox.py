"""Receipts on their way to one receiving session, and how we learn they arrived.

Normally an ESME's deliver_sm_resp tells us. smpp34's server, however, only correlates
deliver_sm_resp on transceiver binds: on a receiver (RX) bind it answers the ESME's resp
with generic_nack and our Future hangs until its 30 s response timer. `Esme` does not say
which bind type it is, so each outbox finds out:

* confirming: the session has submitted (so it is TX/TRX) or has answered a deliver_sm.
  A window of receipts is in flight; the resp settles each one.
* probing: a receiving session we know nothing about yet. One receipt goes out; an answer
  within `PROBE_TIMEOUT` makes it confirming, silence while it stays bound makes it blind.
* blind: a receiver bind whose answers we cannot see. Receipts go out without a window and
  count as delivered once the session has stayed bound `BLIND_GRACE` after the write (an
  smpp34 client that cannot take a deliver_sm drops the session at once); those written to
  a session that then goes away are retried, so they may arrive twice but never not at all.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from functools import partial
from typing import Protocol

import smpp34

from simulators.carrier.protocol import ESM_DELIVERY_RECEIPT
from simulators.carrier.receipts import Receipt, receipt_text, receipt_tlvs
from simulators.carrier.state import RuntimeConfig

PROBE_TIMEOUT = 1.0
BLIND_GRACE = 1.0


class Mode(enum.Enum):
    """How an outbox learns that its receipts arrived."""

    CONFIRMING = "confirming"
    PROBING = "probing"
    BLIND = "blind"


class Settlement(Protocol):
    """What the dispatcher does with a receipt once its fate is known."""

    def delivered(self) -> None: ...
    def retry(self, receipt: Receipt, failed_session: str) -> None: ...


class Outbox:
    """Receipts queued for, in flight to, or unconfirmed at one receiving session."""

    __slots__ = (
        "_awaiting",
        "_blind_check",
        "_config",
        "_loop",
        "_probe",
        "_probe_receipt",
        "_settle",
        "_unconfirmed",
        "_window",
        "esme",
        "mode",
        "open",
        "queue",
        "session_id",
        "system_id",
    )

    def __init__(
        self,
        esme: smpp34.Esme,
        settle: Settlement,
        config: RuntimeConfig,
        window: int,
        mode: Mode = Mode.PROBING,
    ) -> None:
        self.esme = esme
        self.session_id = esme.session_id
        self.system_id = esme.system_id
        self.queue: deque[Receipt] = deque()
        # Sent and awaiting their deliver_sm_resp (the window), in confirming/probing mode.
        self._awaiting: set[Receipt] = set()
        self.open = True
        self.mode = mode
        self._settle = settle
        self._config = config
        self._window = window
        self._loop = asyncio.get_running_loop()
        self._probe: asyncio.TimerHandle | None = None
        self._probe_receipt: Receipt | None = None  # the probe, while its answer is awaited
        self._unconfirmed: deque[tuple[float, Receipt]] = deque()
        self._blind_check: asyncio.TimerHandle | None = None

    def confirm(self) -> None:
        """The session proved it answers deliver_sm (it submitted, or a resp came back)."""
        if self.mode is Mode.CONFIRMING:
            return
        self.mode = Mode.CONFIRMING
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        self.pump()

    def pump(self) -> None:
        """Send queued receipts as far as the mode and the window allow."""
        if self._config.paused or not self.open:
            return
        mode = self.mode
        if mode is Mode.BLIND:
            limit = len(self.queue)
        elif mode is Mode.PROBING:
            limit = 1 - len(self._awaiting)
        else:
            limit = self._window - len(self._awaiting)
        now = time.time()
        while self.queue and limit > 0:
            limit -= 1
            receipt = self.queue.popleft()
            future = self._send(receipt, now)
            if future is None:
                self._settle.retry(receipt, self.session_id)
            elif mode is Mode.BLIND:
                future.add_done_callback(self._blind_answered)
                self._unconfirmed.append((self._loop.time() + BLIND_GRACE, receipt))
                self._arm_blind_check()
            else:
                self._awaiting.add(receipt)
                future.add_done_callback(partial(self._answered, receipt))
                if mode is Mode.PROBING:
                    self._probe_receipt = receipt
                    self._probe = self._loop.call_later(PROBE_TIMEOUT, self._probe_expired)

    def close(self) -> tuple[list[Receipt], list[Receipt]]:
        """The session has gone: return (never sent, sent but unconfirmed) for re-routing.

        Receipts still awaiting an answer are handed back too, rather than waiting for
        smpp34's 30 s response timer: the ESME may have had them, so they may arrive twice.
        """
        self.open = False
        for timer in (self._probe, self._blind_check):
            if timer is not None:
                timer.cancel()
        queued = list(self.queue)
        unconfirmed = [receipt for _, receipt in self._unconfirmed]
        unconfirmed.extend(self._awaiting)
        self.queue.clear()
        self._unconfirmed.clear()
        self._awaiting.clear()
        return queued, unconfirmed

    def _send(self, receipt: Receipt, now: float) -> asyncio.Future[smpp34.DeliverSmResp] | None:
        try:
            # smpp34 returns a Future (typed as a coroutine): ensure_future hands it back.
            return asyncio.ensure_future(
                self.esme.deliver_sm(
                    receipt.destination_addr,
                    receipt_text(receipt, now),
                    source_addr=receipt.source_addr,
                    source_addr_ton=receipt.source_ton,
                    source_addr_npi=receipt.source_npi,
                    dest_addr_ton=receipt.destination_ton,
                    dest_addr_npi=receipt.destination_npi,
                    esm_class=ESM_DELIVERY_RECEIPT,
                    tlvs=receipt_tlvs(receipt),
                )
            )
        except Exception:  # noqa: BLE001  (whatever the binding raises, the receipt is kept)
            return None

    def _answered(self, receipt: Receipt, future: asyncio.Future[smpp34.DeliverSmResp]) -> None:
        answered = not future.cancelled() and future.exception() is None
        if receipt not in self._awaiting:
            # Settled already (an expired probe) or handed back when the session closed; a
            # late answer still shows that the session answers.
            if answered and self.open:
                self.confirm()
            return
        self._awaiting.discard(receipt)
        if receipt is self._probe_receipt:
            self._probe_receipt = None
        # A NAK comes back as a status; the response timer raises SmppError (ESME_RSYSERR).
        if answered:
            if future.result().is_success:
                self._settle.delivered()
            else:
                self._settle.retry(receipt, self.session_id)
            self.confirm()  # an answer of any kind proves the session answers
        else:
            self._settle.retry(receipt, self.session_id)
        self.pump()

    def _probe_expired(self) -> None:
        self._probe = None
        probe = self._probe_receipt
        if not self.open or self.mode is not Mode.PROBING or probe is None:
            return
        # Unanswered for PROBE_TIMEOUT while the session stayed bound: a receiver bind whose
        # answers smpp34 cannot see. The probe counts as delivered, like any blind receipt.
        self.mode = Mode.BLIND
        self._probe_receipt = None
        self._awaiting.discard(probe)
        self._settle.delivered()
        self.pump()

    def _blind_answered(self, future: asyncio.Future[smpp34.DeliverSmResp]) -> None:
        # Settlement happens in _settle_blind; a resp that does arrive proves a TRX bind.
        if not future.cancelled() and future.exception() is None and self.open:
            self.confirm()

    def _arm_blind_check(self) -> None:
        if self._blind_check is None and self._unconfirmed:
            when = self._unconfirmed[0][0]
            self._blind_check = self._loop.call_at(when, self._settle_blind)

    def _settle_blind(self) -> None:
        self._blind_check = None
        if not self.open:
            return
        now = self._loop.time()
        unconfirmed = self._unconfirmed
        while unconfirmed and unconfirmed[0][0] <= now:
            unconfirmed.popleft()
            self._settle.delivered()
        self._arm_blind_check()
