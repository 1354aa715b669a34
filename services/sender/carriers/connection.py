"""One SMPP TCP connection: frames PDUs, pairs responses with requests, answers the SMSC.

An asyncio Protocol rather than a stream: every PDU that arrived in one read is handled in
one pass, with no task, await or timer per PDU, so a bind carrying thousands of submits and
receipts a second costs the event loop one callback per read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import cast

import structlog

from services.sender.carriers import wire

log = structlog.get_logger(__name__)

# Sequence numbers run 0x00000001..0x7FFFFFFF (SMPP 3.4 §5.1.4), then wrap.
_MAX_SEQUENCE = 0x7FFFFFFF

Response = tuple[int, bytes]  # command_status, body
# Called with the connection, the deliver_sm's sequence number and its body; the callee
# answers it with `respond` whenever it is ready to.
DeliverHandler = Callable[["SmppConnection", int, bytes], None]
# Called with a request's future once it is done (see `request`).
Answered = Callable[[asyncio.Future[Response]], None]


class SmppConnection(asyncio.Protocol):
    """Requests out with their futures; deliver_sm to a handler; link upkeep answered here."""

    def __init__(self, on_deliver: DeliverHandler, response_timeout: float) -> None:
        self._on_deliver = on_deliver
        self._timeout = response_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        # PDUs written in one pass of the event loop leave in one send: a syscall per
        # submit_sm was a tenth of the bulk sender's CPU.
        self._out: list[bytes] = []
        self._sequence = 0
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._answered: dict[int, Answered] = {}
        # (deadline, sequence) in sending order: the deadlines are too, so expiring them is
        # popping from the left, with no timer per request.
        self._deadlines: deque[tuple[float, int]] = deque()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.last_read = self._loop.time()
        self.unbound_by_peer = False

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        buffer = self._buffer
        buffer += data
        size, at = len(buffer), 0
        unpack = wire.HEADER.unpack_from
        while size - at >= wire.HEADER.size:
            length, command_id, status, sequence = unpack(buffer, at)
            if not wire.HEADER.size <= length <= wire.MAX_PDU:
                log.warning("smpp.bad_command_length", command_length=length)
                self.abort()
                return
            if size - at < length:
                break
            body = bytes(buffer[at + wire.HEADER.size : at + length])
            at += length
            if command_id & wire.RESPONSE:
                future = self._pending.pop(sequence, None)
                answered = self._answered.pop(sequence, None)
                if future is not None and not future.done():
                    future.set_result((status, body))
                    if answered is not None:
                        self._answer(answered, future)
            elif command_id == wire.DELIVER_SM:
                self._on_deliver(self, sequence, body)
            else:
                self._on_request(command_id, sequence)
        del buffer[:at]
        # What the answers and deliveries of this read wrote (the next submits, most of
        # all) leaves now, not a pass of the event loop later.
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        pending, self._pending = self._pending, {}
        answered, self._answered = self._answered, {}
        self._deadlines.clear()
        for sequence, future in pending.items():
            if not future.done():
                future.set_exception(ConnectionError("the connection closed"))
                self._answer_soon(answered.get(sequence), future)
        if not self.closed.done():
            self.closed.set_result(None)

    # -- use ------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def request(
        self, command_id: int, body: bytes = b"", answered: Answered | None = None
    ) -> asyncio.Future[Response]:
        """Send a request; its future resolves with the response's status and body.

        It fails with ConnectionError if the connection closes first and with TimeoutError
        once the response timeout has passed (see `expire`).

        `answered` is called with the done future: right as the response is read, in the
        same pass as the read (a done-callback would run a pass later, and what it writes
        a pass after that, so each turn of a full window waited two passes of a busy event
        loop); on a failure, soon after, as a done-callback would be.
        """
        if not self.is_open:
            raise ConnectionError("the connection is closed")
        sequence = self._next_sequence()
        future = self._loop.create_future()
        self._pending[sequence] = future
        if answered is not None:
            self._answered[sequence] = answered
        self._deadlines.append((self._loop.time() + self._timeout, sequence))
        self._write(wire.pdu(command_id, sequence, body))
        return future

    def notify(self, command_id: int, body: bytes = b"") -> None:
        """Send a request whose response nobody waits for (enquire_link)."""
        if self.is_open:
            self._write(wire.pdu(command_id, self._next_sequence(), body))

    def respond(self, command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> None:
        """Answer a request of the SMSC's; dropped if the connection has closed meanwhile."""
        if self.is_open:
            self._write(wire.pdu(command_id, sequence, body, status))

    def expire(self) -> None:
        """Fail every request whose response is overdue."""
        now, deadlines = self._loop.time(), self._deadlines
        while deadlines and deadlines[0][0] <= now:
            sequence = deadlines.popleft()[1]
            future = self._pending.pop(sequence, None)
            answered = self._answered.pop(sequence, None)
            if future is not None and not future.done():
                future.set_exception(TimeoutError("no response within the response timeout"))
                self._answer_soon(answered, future)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        """Close once what is written has gone out."""
        if self._transport is not None:
            self._flush()
            self._transport.close()

    def _answer(self, answered: Answered, future: asyncio.Future[Response]) -> None:
        """Call `answered` in the read's pass; its failure is logged, as the event loop logs
        a callback's, rather than ending the read."""
        try:
            answered(future)
        except Exception:
            log.exception("smpp.answer_callback_failed")

    def _answer_soon(self, answered: Answered | None, future: asyncio.Future[Response]) -> None:
        if answered is not None:
            self._loop.call_soon(answered, future)

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % _MAX_SEQUENCE + 1
        return self._sequence

    def _write(self, data: bytes) -> None:
        out = self._out
        out.append(data)
        if len(out) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        out, transport = self._out, self._transport
        if out:
            if transport is not None and not transport.is_closing():
                transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def _on_request(self, command_id: int, sequence: int) -> None:
        if command_id == wire.ENQUIRE_LINK:
            self.respond(wire.ENQUIRE_LINK | wire.RESPONSE, sequence)
        elif command_id == wire.UNBIND:
            self.unbound_by_peer = True
            self.respond(wire.UNBIND | wire.RESPONSE, sequence)
            self.close()
        else:
            self.respond(wire.GENERIC_NACK, sequence, status=wire.ESME_RINVCMDID)
