"""A request's `answered` callback runs in the pass that reads its response, and what it
writes leaves in that pass: a full window turns over without waiting for the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.sender.carriers import wire
from services.sender.carriers.connection import Response, SmppConnection


class Transport:
    """What the connection wrote, send by send."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True


def _connection(response_timeout: float = 5.0) -> tuple[SmppConnection, Transport]:
    connection = SmppConnection(lambda *_: None, response_timeout=response_timeout)
    transport = Transport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return connection, transport


def _sequences(sent: list[bytes]) -> list[int]:
    data, found = b"".join(sent), []
    while data:
        length, _, _, sequence = wire.HEADER.unpack_from(data)
        found.append(sequence)
        data = data[length:]
    return found


async def test_an_answer_is_handled_and_the_next_request_sent_within_the_read() -> None:
    connection, transport = _connection()
    answers: list[Response] = []

    def answered(future: asyncio.Future[Response]) -> None:
        answers.append(future.result())
        connection.request(wire.SUBMIT_SM, b"next")

    connection.request(wire.SUBMIT_SM, b"first", answered)
    await asyncio.sleep(0)  # the first request leaves
    assert _sequences(transport.sent) == [1]

    connection.data_received(wire.pdu(wire.SUBMIT_SM | wire.RESPONSE, 1, b"id-1\x00"))
    # No pass of the event loop in between.
    assert answers == [(0, b"id-1\x00")]
    assert _sequences(transport.sent) == [1, 2]


async def test_a_failing_answer_callback_is_logged_and_the_read_goes_on() -> None:
    connection, _ = _connection()
    seen: list[int] = []

    def broken(future: asyncio.Future[Response]) -> None:
        raise RuntimeError("a bug in the caller")

    connection.request(wire.SUBMIT_SM, b"a", broken)
    second = connection.request(wire.SUBMIT_SM, b"b", lambda f: seen.append(f.result()[0]))
    both = wire.pdu(wire.SUBMIT_SM | wire.RESPONSE, 1, b"x\x00") + wire.pdu(
        wire.SUBMIT_SM | wire.RESPONSE, 2, b"y\x00", status=0x58
    )
    connection.data_received(both)
    assert seen == [0x58]
    assert second.done()
    assert connection.is_open


@pytest.mark.parametrize("ending", ["lost", "timed out"])
async def test_a_request_that_gets_no_answer_is_answered_soon_after_with_its_failure(
    ending: str,
) -> None:
    connection, _ = _connection(response_timeout=0.0)
    failures: list[Any] = []
    connection.request(wire.SUBMIT_SM, b"a", lambda f: failures.append(type(f.exception())))
    if ending == "lost":
        connection.connection_lost(None)
    else:
        connection.expire()
    assert failures == []  # as a done-callback would be: soon, not within the call
    await asyncio.sleep(0)
    assert failures == [ConnectionError if ending == "lost" else TimeoutError]
