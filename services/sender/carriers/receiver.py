"""A receiver bind (SMPP 3.4 bind_receiver) that acknowledges a delivery receipt only after
it is stored.

smpp34 answers deliver_sm itself the moment a PDU arrives, so a receipt in memory when the
process dies would be lost: the carrier believes it delivered and never sends it again.
This bind speaks the few PDUs a receiver needs on a plain asyncio stream, decodes
deliver_sm with smpp34's codec, and sends deliver_sm_resp once `on_receipt` says the
receipt is durable. Until then the carrier keeps it: if this process dies first, the
carrier delivers it again to the next bind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import struct
from collections.abc import Awaitable, Callable

import smpp34
import structlog

from services.sender.carriers.smpp_config import SmppBindConfig
from services.sender.receipts import Receipt, parse_receipt

log = structlog.get_logger(__name__)

BIND_RECEIVER, BIND_RECEIVER_RESP = 0x00000001, 0x80000001
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
UNBIND, UNBIND_RESP = 0x00000006, 0x80000006
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
GENERIC_NACK = 0x80000000
ESME_RINVCMDID = 0x00000003
ESME_RX_T_APPN = 0x00000064  # "temporary application error": the SMSC retries later
_HEADER = struct.Struct(">IIII")
ENQUIRE_INTERVAL = 30.0  # SMPP 3.4 leaves it to the parties; carriers expect ~30-60 s
# A session with nothing read for this long (not even enquire_link answers) is dead.
IDLE_LIMIT = ENQUIRE_INTERVAL * 3
_MAX_PDU = 64 * 1024

# Stores a receipt; resolves once it is durable (None when there is nothing to store).
DurableReceipt = Callable[[Receipt], Awaitable[None] | None]


def _cstring(value: str) -> bytes:
    return value.encode("ascii") + b"\0"


def pdu(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return _HEADER.pack(_HEADER.size + len(body), command_id, status, sequence) + body


class SmppReceiver:
    """One receiver bind, rebinding with jittered backoff until closed."""

    def __init__(self, name: str, config: SmppBindConfig, on_receipt: DurableReceipt) -> None:
        self.name = name
        self.config = config
        self._on_receipt = on_receipt
        self._sequence = itertools.count(1)
        self._up = asyncio.Event()
        self._closed = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._last_read = 0.0
        self._task: asyncio.Task[None] | None = None
        self._log = log.bind(carrier=name, system_id=config.system_id, bind="RX")

    def is_up(self) -> bool:
        return self._up.is_set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"smpp-rx-{self.name}")

    async def close(self) -> None:
        self._closed.set()
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.write(pdu(UNBIND, next(self._sequence)))
                await asyncio.wait_for(writer.drain(), 2)
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=2)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)

    async def _supervise(self) -> None:
        failures = 0
        while not self._closed.is_set():
            started = asyncio.get_running_loop().time()
            try:
                await self._session()
            except Exception as error:  # noqa: BLE001 — any failure ends this session only
                self._log.warning("smpp.receiver_session_ended", error=repr(error))
            finally:
                self._up.clear()
                self._writer = None
            if self._closed.is_set():
                return
            lived = asyncio.get_running_loop().time() - started
            failures = 0 if lived > 2 * self.config.reconnect_max else failures + 1
            ceiling = min(self.config.reconnect_max, self.config.reconnect_min * 2**failures)
            with contextlib.suppress(TimeoutError):
                delay = random.uniform(self.config.reconnect_min, ceiling)
                await asyncio.wait_for(self._closed.wait(), timeout=delay)

    async def _session(self) -> None:
        cfg = self.config
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.host, cfg.port), cfg.connect_timeout
        )
        self._writer = writer
        try:
            body = (
                _cstring(cfg.system_id)
                + _cstring(cfg.password)
                + _cstring(cfg.system_type)
                + bytes([0x34, 0, 0])  # interface version 3.4, addr_ton, addr_npi
                + b"\0"  # address_range
            )
            writer.write(pdu(BIND_RECEIVER, next(self._sequence), body))
            command_id, status, _, _ = await asyncio.wait_for(
                _read_pdu(reader), cfg.connect_timeout
            )
            if command_id != BIND_RECEIVER_RESP or status != 0:
                raise ConnectionError(f"bind_receiver refused: 0x{command_id:08x}/0x{status:08x}")
            self._last_read = asyncio.get_running_loop().time()
            self._up.set()
            self._log.info("smpp.bound")
            keepalive = asyncio.create_task(self._keepalive(writer))
            try:
                await self._read(reader, writer)
            finally:
                keepalive.cancel()
        finally:
            writer.transport.abort()

    async def _keepalive(self, writer: asyncio.StreamWriter) -> None:
        """Enquire every interval, and drop a session the carrier has gone silent on.

        The silence check lives here, not as a timeout around each read: a timeout per
        PDU cost a task per receipt, several percent of the sender's CPU in make bench.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(ENQUIRE_INTERVAL)
            silent = loop.time() - self._last_read
            if silent > IDLE_LIMIT:
                self._log.warning("smpp.receiver_silent", seconds=round(silent, 1))
                writer.transport.abort()  # the read loop ends with the connection
                return
            writer.write(pdu(ENQUIRE_LINK, next(self._sequence)))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command_id, _, sequence, raw = await _read_pdu(reader)
            self._last_read = loop.time()
            if command_id == DELIVER_SM:
                self._deliver(writer, sequence, raw)
            elif command_id == ENQUIRE_LINK:
                writer.write(pdu(ENQUIRE_LINK_RESP, sequence))
            elif command_id == UNBIND:
                writer.write(pdu(UNBIND_RESP, sequence))
                await writer.drain()
                self._log.info("smpp.unbound_by_carrier")
                return
            elif command_id == UNBIND_RESP:
                return
            elif command_id == ENQUIRE_LINK_RESP:
                continue
            elif not command_id & 0x80000000:
                writer.write(pdu(GENERIC_NACK, sequence, status=ESME_RINVCMDID))

    def _deliver(self, writer: asyncio.StreamWriter, sequence: int, raw: bytes) -> None:
        def answer(status: int) -> None:
            if not writer.is_closing():
                writer.write(pdu(DELIVER_SM_RESP, sequence, b"\0", status))

        try:
            decoded = smpp34.decode(raw)
            tlvs = [(tlv.tag, tlv.value) for tlv in decoded.tlvs]  # type: ignore[union-attr]
            receipt = parse_receipt(
                decoded.esm_class,  # type: ignore[union-attr]
                decoded.source_addr,  # type: ignore[union-attr]
                decoded.short_message,  # type: ignore[union-attr]
                tlvs,
            )
        except Exception as error:  # noqa: BLE001 — a PDU we cannot read is still answered
            self._log.warning("smpp.deliver_undecodable", error=repr(error))
            answer(0)
            return
        if receipt is None:
            answer(0)  # a mobile-originated message: not ours to keep
            return
        stored = self._on_receipt(receipt)
        if stored is None:
            answer(0)
            return

        def done(future: asyncio.Future[None]) -> None:
            answer(ESME_RX_T_APPN if future.cancelled() or future.exception() else 0)

        asyncio.ensure_future(stored).add_done_callback(done)


async def _read_pdu(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    header = await reader.readexactly(_HEADER.size)
    length, command_id, status, sequence = _HEADER.unpack(header)
    if not _HEADER.size <= length <= _MAX_PDU:
        raise ConnectionError(f"bad command_length {length}")
    body = await reader.readexactly(length - _HEADER.size)
    return command_id, status, sequence, header + body
