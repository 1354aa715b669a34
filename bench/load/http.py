"""A lean HTTP/1.1 keep-alive client for the closed-loop load: one request at a time per
connection, replies framed by Content-Length.

The load generator shares the machine with the platform it measures, so every
millisecond of CPU it spends is taken from the services. aiohttp's client costs about as
much per request as the bare aiohttp server it is pointed at; this one, built on an
`asyncio.Protocol`, a fraction of that. It speaks only what the platform and the ceiling
app answer: a status line, headers, and a body of the length they announce.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class ConnectionLost(ConnectionError):
    """The server closed the connection, or the client timed out, before a whole reply."""


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._reply: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionLost(f"connection closed: {exc!r}"))

    def expect(self) -> asyncio.Future[tuple[int, bytes]]:
        self._reply = asyncio.get_running_loop().create_future()
        return self._reply

    def _fail(self, error: Exception) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(error)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self._buffer[:head_end]).split(b"\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                self._fail(ConnectionLost("chunked replies are not read by this client"))
                return
        end = head_end + 4 + length
        if len(self._buffer) < end:
            return
        body = bytes(self._buffer[head_end + 4 : end])
        del self._buffer[:end]
        status = int(head[0].split(b" ", 2)[1])
        if self._reply is not None and not self._reply.done():
            self._reply.set_result((status, body))


class HttpConnection:
    """One keep-alive connection; `post` waits for its reply before the next may be sent."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._path = (parts.path or "/").encode()
        fixed = {"Host": f"{self._host}:{self._port}", **headers}
        self._head = b"".join(f"{k}: {v}\r\n".encode() for k, v in fixed.items())
        self._timeout = timeout
        self._protocol: _Protocol | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """The reply's status and body; ConnectionLost (or OSError) when none came whole."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(_Protocol, self._host, self._port)
            self._protocol = protocol
        assert protocol.transport is not None
        reply = protocol.expect()
        protocol.transport.write(
            b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
            % (self._path, self._head, len(body), body)
        )
        timer = asyncio.get_running_loop().call_later(
            self._timeout, protocol._fail, ConnectionLost("no reply in time")
        )
        try:
            return await reply
        except ConnectionLost:
            self.close()
            raise
        finally:
            timer.cancel()

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
