"""The SMPP 3.4 server: TCP connections, binds, and the session each bind becomes.

Each connection is an `asyncio.Protocol`. One `data_received` parses every complete PDU in
its buffer, answers them all with one write, and hands submits to the application
synchronously: no task, coroutine or Future per PDU, so a busy bind costs the SMSC a few
microseconds per message. The application (the simulated SMSC) decides what a submit_sm
gets; sessions that receive (RX, TRX) get deliver_sm through their `Deliveries`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Protocol, cast

from simulators.carrier import wire
from simulators.carrier.protocol import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM_RESP,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_RALYBND,
    ESME_RBINDFAIL,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RSYSERR,
    GENERIC_NACK,
    RESPONSE,
    SUBMIT_SM,
    UNBIND,
    UNBIND_RESP,
)

_BIND_TYPES = {BIND_RECEIVER: "RX", BIND_TRANSMITTER: "TX", BIND_TRANSCEIVER: "TRX"}
_unpack_header = wire.HEADER.unpack_from
_HEADER_SIZE = wire.HEADER_SIZE
_MAX_LENGTH = wire.MAX_COMMAND_LENGTH


class Deliveries(Protocol):
    """Where a receiving session's deliver_sm_resp go, and what may send more afterwards."""

    def answered(self, sequence: int, status: int) -> None: ...
    def pump(self) -> None: ...


class Application(Protocol):
    """What the server asks of the SMSC behind it."""

    def session_bound(self, session: Session) -> None: ...
    def session_unbound(self, session: Session) -> None: ...
    def submit_sm(self, session: Session, sequence: int, submit: wire.SubmitSm) -> bytes | None:
        """The submit_sm_resp to write now, or None if the application answers later."""


class Session:
    """A bound ESME: who it is, how it bound, and the way to write to it."""

    __slots__ = (
        "_sequence",
        "_transport",
        "bind_type",
        "carrier",
        "deliveries",
        "open",
        "receives",
        "session_id",
        "system_id",
        "transmits",
    )

    def __init__(
        self, session_id: int, system_id: str, bind_type: str, transport: asyncio.Transport
    ) -> None:
        self.session_id = session_id
        self.system_id = system_id
        self.bind_type = bind_type
        # SMPP 3.4 §2.2: only receivers and transceivers are sent deliver_sm; only
        # transmitters and transceivers may submit.
        self.receives = bind_type != "TX"
        self.transmits = bind_type != "RX"
        self.carrier = system_id  # the label the application serves it as
        self.deliveries: Deliveries | None = None
        self.open = True
        self._sequence = 0
        self._transport = transport

    def next_sequence(self) -> int:
        """A sequence number for a PDU the SMSC originates, 1..0x7FFFFFFF and around again."""
        self._sequence = sequence = self._sequence % wire.MAX_SEQUENCE + 1
        return sequence

    def send(self, data: bytes) -> None:
        """Write PDUs, unless the connection is already going."""
        transport = self._transport
        if not transport.is_closing():
            transport.write(data)


class SmppConnection(asyncio.Protocol):
    """One ESME's TCP connection, from its bind to its unbind or drop."""

    def __init__(self, server: SmppServer) -> None:
        self._server = server
        self._app = server.app
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._closing = False
        self.session: Session | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass, hence the cast).
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._end_session()
        self._server.connections.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        buffer = self._buffer + data if self._buffer else data
        size = len(buffer)
        pos = 0
        out: list[bytes] = []
        session = self.session
        answered: Deliveries | None = None
        while size - pos >= _HEADER_SIZE:
            length, command_id, status, sequence = _unpack_header(buffer, pos)
            if not _HEADER_SIZE <= length <= _MAX_LENGTH:
                out.append(wire.generic_nack(sequence, ESME_RINVCMDLEN))
                self._closing = True
                break
            end = pos + length
            if end > size:
                break
            if command_id == SUBMIT_SM:
                resp = self._submit(session, sequence, buffer, pos + _HEADER_SIZE, end)
                if resp is not None:
                    out.append(resp)
            elif command_id in (DELIVER_SM_RESP, GENERIC_NACK):
                if session is not None and session.deliveries is not None:
                    answered = session.deliveries
                    if command_id == GENERIC_NACK and not status:
                        status = ESME_RSYSERR  # a NAK of our deliver_sm is a failure regardless
                    answered.answered(sequence, status)
            else:
                self._control(command_id, sequence, buffer, pos + _HEADER_SIZE, end, out)
                session = self.session
                if self._closing:
                    break
            pos = end
        self._buffer = buffer[pos:] if pos < size else b""
        transport = self._transport
        assert transport is not None
        if out:
            transport.write(b"".join(out))
        if self._closing:
            self._buffer = b""
            transport.close()  # after the answers written above
        elif answered is not None:
            answered.pump()

    def _submit(
        self, session: Session | None, sequence: int, buffer: bytes, pos: int, end: int
    ) -> bytes | None:
        if session is None or not session.transmits:
            return wire.submit_sm_error(sequence, ESME_RINVBNDSTS)
        try:
            submit = wire.read_submit_sm(buffer, pos, end)
        except wire.PduError:
            return wire.generic_nack(sequence, ESME_RINVCMDLEN)
        return self._app.submit_sm(session, sequence, submit)

    def _control(
        self, command_id: int, sequence: int, buffer: bytes, pos: int, end: int, out: list[bytes]
    ) -> None:
        """Everything but submit_sm and deliver_sm_resp: binds, unbinds, enquire_link."""
        if command_id == ENQUIRE_LINK:
            out.append(wire.pdu(ENQUIRE_LINK_RESP, sequence))
        elif command_id in _BIND_TYPES:
            self._bind(command_id, sequence, buffer, pos, end, out)
        elif command_id == UNBIND:
            out.append(wire.pdu(UNBIND_RESP, sequence))
            self._end_session()
            self._closing = True
        elif command_id == UNBIND_RESP:
            self._end_session()  # the answer to the unbind we sent when stopping
            self._closing = True
        elif not command_id & RESPONSE:
            out.append(wire.generic_nack(sequence, ESME_RINVCMDID))
        # Other responses answer nothing we sent: ignored, never NAKed back.

    def _bind(
        self, command_id: int, sequence: int, buffer: bytes, pos: int, end: int, out: list[bytes]
    ) -> None:
        resp_id = command_id | RESPONSE
        if self.session is not None:
            out.append(wire.pdu(resp_id, sequence, ESME_RALYBND))
            return
        try:
            system_id = wire.read_system_id(buffer, pos, end)
        except wire.PduError:
            out.append(wire.pdu(resp_id, sequence, ESME_RBINDFAIL))
            return
        transport = self._transport
        assert transport is not None
        session = Session(
            next(self._server.session_ids), system_id, _BIND_TYPES[command_id], transport
        )
        self.session = session
        out.append(wire.bind_resp(resp_id, sequence, self._server.system_id))
        # The bind_resp must be on the wire before any receipt the bind releases.
        transport.write(b"".join(out))
        out.clear()
        self._app.session_bound(session)

    def _end_session(self) -> None:
        session = self.session
        if session is not None and session.open:
            session.open = False
            self._app.session_unbound(session)

    def unbind(self) -> bool:
        """Ask a bound ESME to unbind (§4.2); its unbind_resp closes the connection.

        False if there is no bound session to ask.
        """
        session = self.session
        if session is None or not session.open or self._closing:
            return False
        session.send(wire.pdu(UNBIND, session.next_sequence()))
        return True

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._transport is not None:
            self._transport.abort()


class SmppServer:
    """Listens for ESMEs and serves each connection to `app`."""

    def __init__(self, app: Application, host: str, port: int, system_id: str) -> None:
        self.app = app
        self.system_id = system_id
        self.connections: set[SmppConnection] = set()
        self.session_ids = itertools.count(1)
        self._host = host
        self._port = port
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Open the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SmppConnection(self), self._host, self._port
        )

    async def stop(self, grace: float = 1.0) -> None:
        """Close the port, unbind every session, and drop what has not gone within `grace`."""
        if self._server is not None:
            self._server.close()
        unbinding = [c.closed for c in list(self.connections) if c.unbind()]
        if unbinding:
            await asyncio.wait(unbinding, timeout=grace)
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), grace)
