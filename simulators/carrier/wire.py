"""SMPP 3.4 on the wire, as the simulated SMSC reads and writes it.

Readers work on the connection's buffer in place, by offsets, with `bytes.index` finding
each C-octet string, so a submit_sm costs a few slices and no copies of the buffer.
Writers are one struct pack and one join per PDU.
"""

from __future__ import annotations

import struct

from simulators.carrier.protocol import (
    DELIVER_SM,
    GENERIC_NACK,
    INTERFACE_VERSION,
    SUBMIT_SM_RESP,
    TLV_SC_INTERFACE_VERSION,
)

# command_length, command_id, command_status, sequence_number (§3.2)
HEADER = struct.Struct(">IIII")
HEADER_SIZE = HEADER.size
# A longer command_length is a broken peer (or a stream out of step), not a message.
MAX_COMMAND_LENGTH = 64 * 1024
MAX_SEQUENCE = 0x7FFFFFFF  # sequence numbers run 1..0x7FFFFFFF (§5.1.4)
_TLV = struct.Struct(">HH")
_pack_header = HEADER.pack


class PduError(ValueError):
    """A PDU body that does not follow SMPP 3.4."""


class SubmitSm:
    """The submit_sm fields the SMSC acts on (§4.4.1); other fields are skipped unread."""

    __slots__ = (
        "data_coding",
        "dest_addr_npi",
        "dest_addr_ton",
        "destination_addr",
        "esm_class",
        "optional",
        "registered_delivery",
        "short_message",
        "source_addr",
        "source_addr_npi",
        "source_addr_ton",
    )

    def __init__(
        self,
        source_addr_ton: int,
        source_addr_npi: int,
        source_addr: str,
        dest_addr_ton: int,
        dest_addr_npi: int,
        destination_addr: str,
        esm_class: int,
        registered_delivery: int,
        data_coding: int,
        short_message: bytes,
        optional: bytes,
    ) -> None:
        self.source_addr_ton = source_addr_ton
        self.source_addr_npi = source_addr_npi
        self.source_addr = source_addr
        self.dest_addr_ton = dest_addr_ton
        self.dest_addr_npi = dest_addr_npi
        self.destination_addr = destination_addr
        self.esm_class = esm_class
        self.registered_delivery = registered_delivery
        self.data_coding = data_coding
        self.short_message = short_message
        self.optional = optional  # the TLVs, still encoded: most submits need none of them


def read_submit_sm(data: bytes, pos: int, end: int) -> SubmitSm:
    """The submit_sm whose body is `data[pos:end]`; PduError if it is malformed."""
    try:
        index = data.index
        p = index(b"\0", pos, end) + 1  # service_type
        source_ton, source_npi = data[p], data[p + 1]
        z = index(b"\0", p + 2, end)
        source = data[p + 2 : z].decode("latin-1")
        dest_ton, dest_npi = data[z + 1], data[z + 2]
        p = z + 3
        z = index(b"\0", p, end)
        destination = data[p:z].decode("latin-1")
        esm_class = data[z + 1]  # then protocol_id, priority_flag
        z = index(b"\0", z + 4, end)  # schedule_delivery_time
        p = index(b"\0", z + 1, end) + 1  # validity_period
        # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
        registered, data_coding, sm_length = data[p], data[p + 2], data[p + 4]
        p += 5
    except (ValueError, IndexError) as exc:  # a C-octet string ran past the body
        raise PduError("truncated submit_sm") from exc
    if p + sm_length > end:
        raise PduError("truncated submit_sm")
    return SubmitSm(
        source_ton,
        source_npi,
        source,
        dest_ton,
        dest_npi,
        destination,
        esm_class,
        registered,
        data_coding,
        data[p : p + sm_length],
        data[p + sm_length : end],
    )


def read_system_id(data: bytes, pos: int, end: int) -> str:
    """The system_id a bind_* body starts with (§4.1.1); PduError if it is malformed."""
    try:
        return data[pos : data.index(b"\0", pos, end)].decode("latin-1")
    except ValueError as exc:
        raise PduError("bind without a system_id") from exc


def read_tlvs(optional: bytes) -> list[tuple[int, bytes]]:
    """(tag, value) pairs of encoded optional parameters (§3.2.4.1)."""
    items: list[tuple[int, bytes]] = []
    pos, end = 0, len(optional)
    while pos + 4 <= end:
        tag, length = _TLV.unpack_from(optional, pos)
        pos += 4
        items.append((tag, optional[pos : pos + length]))
        pos += length
    if pos != end:
        raise PduError("truncated optional parameter")
    return items


def tlv(tag: int, value: bytes) -> bytes:
    """One encoded optional parameter."""
    return _TLV.pack(tag, len(value)) + value


def pdu(command_id: int, sequence: int, status: int = 0, body: bytes = b"") -> bytes:
    """One framed PDU."""
    return _pack_header(HEADER_SIZE + len(body), command_id, status, sequence) + body


def generic_nack(sequence: int, status: int) -> bytes:
    """generic_nack (§4.3.1), for a request the SMSC cannot take at all."""
    return _pack_header(HEADER_SIZE, GENERIC_NACK, status, sequence)


_BIND_RESP_VERSION = tlv(TLV_SC_INTERFACE_VERSION, bytes([INTERFACE_VERSION]))


def bind_resp(command_id: int, sequence: int, system_id: str) -> bytes:
    """A successful bind_*_resp (§4.1.2): our system_id and the version we speak."""
    return pdu(command_id, sequence, 0, system_id.encode("latin-1") + b"\0" + _BIND_RESP_VERSION)


def submit_sm_resp(sequence: int, message_id: str) -> bytes:
    """An accepting submit_sm_resp (§4.4.2) carrying the carrier's message id."""
    body = message_id.encode("ascii")
    return _pack_header(HEADER_SIZE + len(body) + 1, SUBMIT_SM_RESP, 0, sequence) + body + b"\0"


def submit_sm_error(sequence: int, status: int) -> bytes:
    """A refusing submit_sm_resp: no body when the status is an error (§4.4.2)."""
    return _pack_header(HEADER_SIZE, SUBMIT_SM_RESP, status, sequence)


def deliver_sm(
    sequence: int,
    source_ton: int,
    source_npi: int,
    source_addr: str,
    dest_ton: int,
    dest_npi: int,
    destination_addr: str,
    esm_class: int,
    short_message: bytes,
    optional: bytes,
) -> bytes:
    """A deliver_sm (§4.6.1) in data_coding 0, with no scheduling or validity."""
    body = b"".join(
        (
            b"\0",  # service_type
            bytes((source_ton, source_npi)),
            source_addr.encode("latin-1"),
            bytes((0, dest_ton, dest_npi)),
            destination_addr.encode("latin-1"),
            # NUL, esm_class, protocol_id, priority_flag, empty schedule and validity times,
            # registered_delivery, replace_if_present, data_coding, sm_default_msg_id, sm_length
            bytes((0, esm_class, 0, 0, 0, 0, 0, 0, 0, 0, len(short_message))),
            short_message,
            optional,
        )
    )
    return _pack_header(HEADER_SIZE + len(body), DELIVER_SM, 0, sequence) + body
