"""SMPP 3.4 on the wire: the PDUs an ESME sends and reads, framed and unframed.

Only what the sender needs: binds, submit_sm, deliver_sm, enquire_link, unbind and
generic_nack. Encoding is a handful of bytes concatenations and one struct pack per PDU,
decoding a few `bytes.index` calls, so a busy bind costs microseconds per message.
"""

from __future__ import annotations

import string
import struct
from dataclasses import dataclass

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number
# A PDU longer than this is a broken peer, not a message: SMPP 3.4 PDUs carry at most a
# 64 KiB message_payload, and everything we read is far smaller.
MAX_PDU = 64 * 1024 + HEADER.size

RESPONSE = 0x80000000
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
BIND_COMMANDS = {"RX": BIND_RECEIVER, "TX": BIND_TRANSMITTER, "TRX": BIND_TRANSCEIVER}

ESME_RINVCMDID = 0x00000003
ESME_RX_T_APPN = 0x00000064  # "temporary application error": the SMSC retries later
INTERFACE_VERSION = 0x34


class PduError(ValueError):
    """A PDU whose body does not follow SMPP 3.4."""


def address_digits(address: str) -> str:
    """The digits of a handset address, as SMPP carries it: no "+", spaces or dashes.
    Nearly every address is digits already (or "+" and digits), checked without a loop."""
    digits = address.removeprefix("+")
    if digits.isascii() and digits.isdigit():
        return digits
    return "".join(ch for ch in address if ch in string.digits)


def pdu(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    """One framed PDU."""
    return HEADER.pack(HEADER.size + len(body), command_id, status, sequence) + body


def cstring(value: str) -> bytes:
    """A C-Octet String (§3.1): ASCII, NUL-terminated."""
    return value.encode("ascii") + b"\0"


def bind_body(system_id: str, password: str, system_type: str) -> bytes:
    """bind_* body (§4.1.1): no address range, so the SMSC routes by system_id alone."""
    return (
        cstring(system_id)
        + cstring(password)
        + cstring(system_type)
        + bytes((INTERFACE_VERSION, 0, 0))  # interface_version, addr_ton, addr_npi
        + b"\0"  # address_range
    )


def submit_head(
    source_addr: str, source_ton: int, source_npi: int, dest_ton: int, dest_npi: int
) -> bytes:
    """submit_sm from service_type to dest_addr_npi (§4.4.1): what one bind sends unchanged,
    encoded once and put before each message's destination_addr."""
    return (
        b"\0"  # service_type: the SMSC default
        + bytes((source_ton, source_npi))
        + cstring(source_addr)
        + bytes((dest_ton, dest_npi))
    )


def submit_sm_body(
    head: bytes,
    destination: str,
    short_message: bytes,
    *,
    esm_class: int,
    data_coding: int,
    registered_delivery: int,
    validity_period: str = "",
) -> bytes:
    """A submit_sm body from a bind's `submit_head` and this message's fields.

    The caller keeps short_message within 254 octets (§5.2.21; see MAX_SHORT_MESSAGE).
    """
    return b"".join(
        (
            head,
            cstring(destination),
            bytes((esm_class, 0, 0)),  # esm_class, protocol_id, priority_flag
            b"\0",  # schedule_delivery_time: immediately
            cstring(validity_period),
            # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id,
            # sm_length
            bytes((registered_delivery, 0, data_coding, 0, len(short_message))),
            short_message,
        )
    )


def read_cstring(data: bytes, offset: int) -> tuple[bytes, int]:
    """The C-Octet String at offset (without its NUL) and the offset after it."""
    end = data.find(b"\0", offset)
    if end < 0:
        raise PduError("unterminated C-Octet String")
    return data[offset:end], end + 1


def message_id(body: bytes) -> str:
    """submit_sm_resp's message_id (§4.4.2); empty when the SMSC sent no body."""
    if not body:
        return ""
    value, _ = read_cstring(body, 0)
    return value.decode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class DeliverSm:
    """The deliver_sm fields a receipt is read from (§4.6.1)."""

    source_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: list[tuple[int, bytes]]


def deliver_sm(body: bytes) -> DeliverSm:
    """Decode a deliver_sm body."""
    try:
        _, at = read_cstring(body, 0)  # service_type
        at += 2  # source_addr_ton, source_addr_npi
        source, at = read_cstring(body, at)
        at += 2  # dest_addr_ton, dest_addr_npi
        _, at = read_cstring(body, at)  # destination_addr
        esm_class = body[at]
        at += 3  # esm_class, protocol_id, priority_flag
        _, at = read_cstring(body, at)  # schedule_delivery_time
        _, at = read_cstring(body, at)  # validity_period
        at += 2  # registered_delivery, replace_if_present_flag
        data_coding = body[at]
        length = body[at + 2]  # after sm_default_msg_id
        at += 3
    except IndexError as error:
        raise PduError("deliver_sm ends before its mandatory fields") from error
    short_message = body[at : at + length]
    if len(short_message) != length:
        raise PduError("deliver_sm ends inside short_message")
    return DeliverSm(
        source.decode("ascii", "replace"),
        esm_class,
        data_coding,
        short_message,
        tlvs(body, at + length),
    )


def tlvs(body: bytes, offset: int) -> list[tuple[int, bytes]]:
    """The optional parameters from offset to the end of a body (§5.3)."""
    found: list[tuple[int, bytes]] = []
    end = len(body)
    while offset < end:
        if offset + 4 > end:
            raise PduError("truncated TLV header")
        tag, length = struct.unpack_from(">HH", body, offset)
        offset += 4
        if offset + length > end:
            raise PduError(f"TLV 0x{tag:04x} runs past the PDU")
        found.append((tag, body[offset : offset + length]))
        offset += length
    return found
