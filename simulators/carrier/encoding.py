"""What a submit_sm carries: its text, and where it sits in a concatenated message.

Decoding uses the `gsm0338` package on purpose: the simulator must check our encoder with an
implementation that is not ours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import gsm0338  # noqa: F401  (importing it registers the 'gsm03.38' codec)

from simulators.carrier.protocol import (
    TLV_MESSAGE_PAYLOAD,
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
)


@dataclass(frozen=True, slots=True)
class Part:
    """One segment of a concatenated message: reference, count, 1-based position, body."""

    ref: int
    total: int
    seq: int
    body: bytes


def _ascii_alike() -> bytes:
    """The septets GSM 03.38 maps to the same character as ASCII, as the codec itself says."""
    return bytes(
        octet
        for octet in range(0x80)
        if octet != 0x1B and bytes([octet]).decode("gsm03.38", errors="replace") == chr(octet)
    )


# Most traffic is plain text in this subset; Python's ASCII decoder takes it in a tenth of
# the time the (pure Python) GSM codec does, with the same result.
_ASCII_ALIKE = _ascii_alike()


def decode_text(body: bytes, data_coding: int) -> str:
    """Decode a message body by its SMPP data_coding (SMPP 3.4 §5.2.19)."""
    if data_coding in (0x00, 0x01):
        # SMSC default alphabet: unpacked GSM 03.38 septets, one per octet. 0x01 (IA5) is
        # taken the same way because carriers here treat it as GSM 7-bit too.
        if not body.translate(None, _ASCII_ALIKE):
            return body.decode("ascii")
        return body.decode("gsm03.38", errors="replace")
    if data_coding == 0x08:
        return body.decode("utf-16-be", errors="replace")
    if data_coding == 0x03:
        return body.decode("latin-1")
    if data_coding in (0x02, 0x04):
        return body.hex()
    if data_coding & 0xF0 == 0xF0:
        # GSM 03.38 "data coding/message class" group: bit 2 selects 8-bit data.
        if data_coding & 0x04:
            return body.hex()
        return body.decode("gsm03.38", errors="replace")
    return body.decode("latin-1")


def split_udh(short_message: bytes) -> tuple[Part | None, bytes]:
    """Split a UDHI short_message into its concatenation info (if any) and the body after the UDH.

    Information elements (3GPP TS 23.040 §9.2.3.24): IEI 0x00 = 8-bit reference
    (`05 00 03 ref total seq`), IEI 0x08 = 16-bit reference (`06 08 04 refhi reflo total seq`).
    Other elements (ports, national language shifts) are skipped.
    """
    if not short_message:
        return None, short_message
    udhl = short_message[0]
    body = short_message[1 + udhl :]
    pos, end = 1, min(1 + udhl, len(short_message))
    while pos + 1 < end:
        iei, length = short_message[pos], short_message[pos + 1]
        data = short_message[pos + 2 : pos + 2 + length]
        if iei == 0x00 and length == 3 and len(data) == 3:
            return Part(data[0], data[1], data[2], body), body
        if iei == 0x08 and length == 4 and len(data) == 4:
            return Part((data[0] << 8) | data[1], data[2], data[3], body), body
        pos += 2 + length
    return None, body


def read_tlvs(tlvs: Iterable[tuple[int, bytes]], short_message: bytes) -> tuple[Part | None, bytes]:
    """Concatenation info from SAR TLVs and the body, preferring a message_payload TLV.

    SMPP 3.4 §5.3.2.22-24 (sar_*) and §5.3.2.32 (message_payload, used instead of
    short_message when present).
    """
    body = short_message
    ref = total = seq = None
    for tag, value in tlvs:
        if tag == TLV_MESSAGE_PAYLOAD:
            body = value
        elif tag == TLV_SAR_MSG_REF_NUM:
            ref = int.from_bytes(value, "big")
        elif tag == TLV_SAR_TOTAL_SEGMENTS:
            total = int.from_bytes(value, "big")
        elif tag == TLV_SAR_SEGMENT_SEQNUM:
            seq = int.from_bytes(value, "big")
    if ref is None or total is None or seq is None:
        return None, body
    return Part(ref, total, seq, body), body
