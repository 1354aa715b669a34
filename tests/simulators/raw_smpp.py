"""SMPP 3.4 in raw bytes over an asyncio stream, for what no SMPP library will express.

Answering a deliver_sm with an error, reading exactly what a receiver or transmitter bind
is sent, splitting or batching PDUs on the wire. Every layout is written out here from the
specification, independently of the simulator's codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number

# command_id (SMPP 3.4 §5.1.2)
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015

# command_status (§5.1.3)
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RBINDFAIL = 0x0D
ESME_RX_T_APPN = 0x64


@dataclass(frozen=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes


def frame(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    """One PDU: the 16-octet header, then the body."""
    return HEADER.pack(HEADER.size + len(body), command_id, status, sequence) + body


def bind_body(system_id: str) -> bytes:
    """bind_* (§4.1.1): system_id, password, system_type, version 3.4, ton, npi, range."""
    return system_id.encode() + b"\0secret\0\0" + bytes([0x34, 0, 0]) + b"\0"


def submit_sm_body(destination: str, text: bytes, registered_delivery: int = 1) -> bytes:
    """submit_sm (§4.4.1) from the alphanumeric sender id "Wesendall" to an international number."""
    return (
        b"\0"  # service_type
        + bytes([5, 0])  # source_addr_ton (alphanumeric), source_addr_npi
        + b"Wesendall\0"
        + bytes([1, 1])  # dest_addr_ton (international), dest_addr_npi (E.164)
        + destination.encode()
        + b"\0"
        + bytes([0, 0, 0])  # esm_class, protocol_id, priority_flag
        + b"\0\0"  # schedule_delivery_time, validity_period
        # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
        + bytes([registered_delivery, 0, 0, 0])
        + bytes([len(text)])
        + text
    )


def deliver_sm_text(body: bytes) -> bytes:
    """The short_message of a deliver_sm body (§4.6.1)."""
    pos = body.index(b"\0") + 1 + 2  # service_type, source_addr_ton, source_addr_npi
    pos = body.index(b"\0", pos) + 1 + 2  # source_addr, dest_addr_ton, dest_addr_npi
    pos = body.index(b"\0", pos) + 1 + 3  # destination_addr, esm_class, pid, priority
    pos = body.index(b"\0", pos) + 1  # schedule_delivery_time
    pos = body.index(b"\0", pos) + 1 + 4  # validity_period, reg, replace, coding, default id
    length = body[pos]
    return body[pos + 1 : pos + 1 + length]


def receipt_id(pdu: Pdu) -> str:
    """The `id:` a delivery receipt quotes (Appendix B)."""
    assert pdu.command_id == DELIVER_SM, hex(pdu.command_id)
    text = deliver_sm_text(pdu.body).decode("ascii")
    assert text.startswith("id:"), text
    return text.split(" ", 1)[0][3:]


class RawSmpp:
    """One end of an SMPP connection, written and read a PDU (or a byte) at a time: an ESME
    talking to the carrier simulator, or an SMSC the sender's bind talks to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._sequence = 0

    @classmethod
    async def connect(cls, port: int) -> RawSmpp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # Each write its own TCP segment, so split PDUs really arrive split.
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    @classmethod
    async def bound(cls, port: int, system_id: str, command_id: int) -> RawSmpp:
        """Connected and bound with `command_id` (BIND_RECEIVER, _TRANSMITTER, _TRANSCEIVER)."""
        esme = await cls.connect(port)
        resp = await esme.request(command_id, bind_body(system_id))
        assert (resp.command_id, resp.status) == (command_id | 0x80000000, 0), resp
        return esme

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, command_id: int, body: bytes = b"") -> Pdu:
        """Send one request and read the next PDU, which must answer it."""
        sequence = self.next_sequence()
        await self.send(frame(command_id, sequence, body))
        resp = await self.read()
        assert resp.sequence == sequence, resp
        return resp

    async def submit(self, destination: str, text: bytes = b"Hello") -> str:
        """submit_sm asking for a receipt; the carrier's message id."""
        resp = await self.request(SUBMIT_SM, submit_sm_body(destination, text))
        assert (resp.command_id, resp.status) == (SUBMIT_SM_RESP, 0), resp
        return resp.body.rstrip(b"\0").decode()

    async def read(self, timeout: float = 5.0) -> Pdu:
        length, command_id, status, sequence = HEADER.unpack(
            await asyncio.wait_for(self.reader.readexactly(HEADER.size), timeout)
        )
        body = await asyncio.wait_for(self.reader.readexactly(length - HEADER.size), timeout)
        return Pdu(command_id, status, sequence, body)

    async def answer(self, deliver_sm: Pdu, status: int = 0) -> None:
        """deliver_sm_resp (§4.6.2): an empty message_id, and `status`."""
        await self.send(frame(DELIVER_SM_RESP, deliver_sm.sequence, b"\0", status))

    async def nothing_within(self, seconds: float) -> None:
        """Fail if the simulator sends anything for `seconds`."""
        with contextlib.suppress(TimeoutError):
            pdu = await self.read(timeout=seconds)
            raise AssertionError(f"unexpected PDU {pdu}")

    async def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """Whether the simulator closes the connection within `timeout` (reading past any PDUs)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(4096):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    async def close(self) -> None:
        self.writer.transport.abort()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
