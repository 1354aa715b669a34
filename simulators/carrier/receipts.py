"""Delivery receipts: what each one says, in SMPP 3.4 Appendix B text and in TLVs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from simulators.carrier import wire
from simulators.carrier.protocol import (
    ESM_DELIVERY_RECEIPT,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
)

EAST_AFRICA_TIME = timezone(timedelta(hours=3), "EAT")

# message_state values (SMPP 3.4 §5.2.28).
DELIVERED_STATE = 2
UNDELIVERABLE_STATE = 5
# network_error_code (§5.3.2.31): network type 3 = GSM, then a 2-octet error; MAP error 27
# is "absent subscriber", the usual reason an MTN/Airtel receipt says UNDELIV.
UNDELIVERED_ERROR = 27
_NETWORK_TYPE_GSM = 3

_STATE_DELIVERED = wire.tlv(TLV_MESSAGE_STATE, bytes([DELIVERED_STATE]))
_STATE_UNDELIVERABLE = wire.tlv(TLV_MESSAGE_STATE, bytes([UNDELIVERABLE_STATE])) + wire.tlv(
    TLV_NETWORK_ERROR_CODE, bytes([_NETWORK_TYPE_GSM]) + UNDELIVERED_ERROR.to_bytes(2, "big")
)
_DELIVERED = ("dlvrd:001", "stat:DELIVRD err:000")
_UNDELIVERED = ("dlvrd:000", f"stat:UNDELIV err:{UNDELIVERED_ERROR:03d}")


class Receipt:
    """One pending delivery receipt, for one accepted submit_sm (one part)."""

    __slots__ = (
        "attempts",
        "avoid_session",
        "delivered",
        "destination_addr",
        "destination_npi",
        "destination_ton",
        "receipt_id",
        "session_id",
        "snippet",
        "source_addr",
        "source_npi",
        "source_ton",
        "submitted_at",
        "system_id",
    )

    def __init__(
        self,
        *,
        system_id: str,
        session_id: int,
        receipt_id: str,
        source_addr: str,
        source_ton: int,
        source_npi: int,
        destination_addr: str,
        destination_ton: int,
        destination_npi: int,
        submitted_at: float,
        delivered: bool,
        snippet: str,
    ) -> None:
        self.system_id = system_id
        self.session_id = session_id  # the session that submitted: receipts go back to it
        self.receipt_id = receipt_id
        # The receipt travels back: its source is the handset the message went to, its
        # destination the sender id the message came from.
        self.source_addr = source_addr
        self.source_ton = source_ton
        self.source_npi = source_npi
        self.destination_addr = destination_addr
        self.destination_ton = destination_ton
        self.destination_npi = destination_npi
        self.submitted_at = submitted_at
        self.delivered = delivered
        self.snippet = snippet
        self.attempts = 0
        self.avoid_session: int | None = None


class _MinuteClock:
    """YYMMDDhhmm in East Africa Time, computed once per minute rather than per receipt."""

    __slots__ = ("_minute", "_text")

    def __init__(self) -> None:
        self._minute = -1
        self._text = ""

    def __call__(self, unix_time: float) -> str:
        minute = int(unix_time // 60)
        if minute == self._minute:
            return self._text
        text = datetime.fromtimestamp(minute * 60, EAST_AFRICA_TIME).strftime("%y%m%d%H%M")
        self._minute, self._text = minute, text
        return text


_submit_clock = _MinuteClock()
_done_clock = _MinuteClock()


def receipt_text(receipt: Receipt, done_at: float) -> bytes:
    """The Appendix B short_message: `id:… sub:001 dlvrd:001 submit date:… done date:… stat:…`.

    Dates carry no zone in the format; carriers write their local time, EAT (UTC+3).
    """
    dlvrd, stat = _DELIVERED if receipt.delivered else _UNDELIVERED
    text = (
        f"id:{receipt.receipt_id} sub:001 {dlvrd} submit date:{_submit_clock(receipt.submitted_at)}"
        f" done date:{_done_clock(done_at)} {stat} text:{receipt.snippet}"
    )
    # The text goes out with data_coding 0; anything outside ASCII in the snippet becomes '?'.
    return text.encode("ascii", errors="replace")


def receipt_tlvs(receipt: Receipt) -> bytes:
    """receipted_message_id (C-octet string), message_state and, on failure, network_error_code."""
    receipted = wire.tlv(TLV_RECEIPTED_MESSAGE_ID, receipt.receipt_id.encode("ascii") + b"\0")
    return receipted + (_STATE_DELIVERED if receipt.delivered else _STATE_UNDELIVERABLE)


def receipt_pdu(sequence: int, receipt: Receipt, done_at: float) -> bytes:
    """The deliver_sm carrying `receipt`, back from the handset to the sender id."""
    return wire.deliver_sm(
        sequence,
        receipt.source_ton,
        receipt.source_npi,
        receipt.source_addr,
        receipt.destination_ton,
        receipt.destination_npi,
        receipt.destination_addr,
        ESM_DELIVERY_RECEIPT,
        receipt_text(receipt, done_at),
        receipt_tlvs(receipt),
    )
