"""The bind's SMPP handling when the SMSC misbehaves: silence, drops, unbinds, odd framing.

The SMSC here is a few lines of raw bytes driven by each test, with the SMPP 3.4 layouts
written out, so that the bind is checked against the specification rather than against
our own codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from services.sender.carriers import smpp
from services.sender.carriers.base import Submission, SubmitKind, SubmitOutcome
from services.sender.carriers.smpp import SmppBind, SmppBindConfig
from services.sender.receipts import Receipt
from tests.simulators.raw_smpp import (
    BIND_TRANSMITTER,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_RBINDFAIL,
    ESME_RINVCMDID,
    GENERIC_NACK,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    UNBIND,
    UNBIND_RESP,
    Pdu,
    RawSmpp,
    frame,
)

DATA_SM = 0x00000103  # a request no bind of ours takes


async def expect(peer: RawSmpp, command_id: int) -> Pdu:
    """The next PDU, which must be `command_id`."""
    pdu = await peer.read()
    assert pdu.command_id == command_id, f"expected 0x{command_id:08x}, got {pdu}"
    return pdu


@dataclass
class RawSmsc:
    """Accepts connections and hands each to the test; answers nothing by itself."""

    port: int = 0
    peers: asyncio.Queue[RawSmpp] = field(default_factory=asyncio.Queue)
    accepted: list[RawSmpp] = field(default_factory=list)
    server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Each write its own TCP segment, so split PDUs really arrive split.
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = RawSmpp(reader, writer)
            self.accepted.append(peer)
            self.peers.put_nowait(peer)

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def peer(self, bind_status: int = 0) -> RawSmpp:
        """The next connection, its bind answered with `bind_status`."""
        peer = await asyncio.wait_for(self.peers.get(), 5)
        bind = await expect(peer, BIND_TRANSMITTER)
        await peer.send(frame(BIND_TRANSMITTER | 0x80000000, bind.sequence, b"SMSC\0", bind_status))
        return peer


@pytest.fixture(autouse=True)
def _quick_unbind(monkeypatch: pytest.MonkeyPatch) -> None:
    """This SMSC answers only what a test tells it to: close() need not wait 5 s for it."""
    monkeypatch.setattr(smpp, "_UNBIND_TIMEOUT", 0.2)


@pytest.fixture
async def smsc() -> AsyncIterator[RawSmsc]:
    server = RawSmsc()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()
    for peer in server.accepted:
        peer.writer.close()
    await server.server.wait_closed()


def _bind(smsc: RawSmsc, **settings: object) -> SmppBind:
    config = SmppBindConfig(
        "127.0.0.1",
        smsc.port,
        "mtn",
        "secret",
        bind_type="TX",
        reconnect_min=0.05,
        reconnect_max=0.2,
        **settings,  # type: ignore[arg-type]
    )
    received: list[Receipt] = []  # no test here sends receipts
    return SmppBind("mtn", config, received.append)


@contextlib.asynccontextmanager
async def bound(smsc: RawSmsc, **settings: float) -> AsyncIterator[tuple[SmppBind, RawSmpp]]:
    """A started bind, bound to `smsc`, and the SMSC's side of it; closed afterwards."""
    bind = _bind(smsc, **settings)
    await bind.start()
    try:
        peer = await smsc.peer()
        assert await bind.wait_up(5)
        yield bind, peer
    finally:
        await bind.close()


def _submit(bind: SmppBind) -> asyncio.Task[SubmitOutcome]:
    return asyncio.create_task(bind.submit(Submission("256772123456", [b"hi"], 0, 0, None)))


async def test_an_unanswered_submit_times_out_and_a_late_answer_is_ignored(
    smsc: RawSmsc,
) -> None:
    async with bound(smsc, response_timeout=0.4) as (bind, peer):
        submitting = _submit(bind)
        sequence = (await expect(peer, SUBMIT_SM)).sequence
        outcome = await asyncio.wait_for(submitting, 5)
        # It may have reached the carrier: never reported as refused, never resent blindly.
        assert outcome.kind is SubmitKind.CONNECTION_LOST
        assert outcome.error_code == "response_timeout"
        await peer.send(frame(SUBMIT_SM_RESP, sequence, b"late\0"))
        # The bind carries on: the next submit is answered normally.
        submitting = _submit(bind)
        sequence = (await expect(peer, SUBMIT_SM)).sequence
        await peer.send(frame(SUBMIT_SM_RESP, sequence, b"abc\0"))
        outcome = await asyncio.wait_for(submitting, 5)
        assert (outcome.kind, outcome.carrier_message_ids) == (SubmitKind.OK, ["abc"])


async def test_a_dropped_connection_reports_outstanding_submits_and_rebinds(
    smsc: RawSmsc,
) -> None:
    async with bound(smsc) as (bind, peer):
        submitting = _submit(bind)
        await expect(peer, SUBMIT_SM)
        peer.writer.transport.abort()
        outcome = await asyncio.wait_for(submitting, 5)
        assert (outcome.kind, outcome.error_code) == (SubmitKind.CONNECTION_LOST, "connection_lost")
        await smsc.peer()  # it binds again by itself
        assert await bind.wait_up(5)


async def test_responses_split_and_coalesced_across_reads_are_each_matched(
    smsc: RawSmsc,
) -> None:
    async with bound(smsc) as (bind, peer):
        submits = [_submit(bind) for _ in range(3)]
        sequences = [(await expect(peer, SUBMIT_SM)).sequence for _ in submits]
        # Answered out of order, in pieces that cut through headers and bodies.
        reordered = frame(SUBMIT_SM_RESP, sequences[2], b"id2\0") + frame(
            SUBMIT_SM_RESP, sequences[0], b"id0\0"
        )
        for chunk in (reordered[:7], reordered[7:30], reordered[30:]):
            await peer.send(chunk)
            await asyncio.sleep(0.02)
        await peer.send(frame(SUBMIT_SM_RESP, sequences[1], b"id1\0"))
        outcomes = await asyncio.wait_for(asyncio.gather(*submits), 5)
        assert [o.carrier_message_ids for o in outcomes] == [["id0"], ["id1"], ["id2"]]


async def test_the_smsc_is_answered_and_an_unbind_from_it_ends_the_session(
    smsc: RawSmsc,
) -> None:
    async with bound(smsc) as (bind, peer):
        await peer.send(frame(ENQUIRE_LINK, 7))
        assert await peer.read() == Pdu(ENQUIRE_LINK_RESP, 0, 7, b"")
        await peer.send(frame(DATA_SM, 8))
        assert await peer.read() == Pdu(GENERIC_NACK, ESME_RINVCMDID, 8, b"")
        await peer.send(frame(UNBIND, 9))
        assert await peer.read() == Pdu(UNBIND_RESP, 0, 9, b"")
        assert await asyncio.wait_for(peer.reader.read(), 5) == b""  # and it hangs up
        await smsc.peer()  # then binds again
        assert await bind.wait_up(5)


async def test_a_refused_bind_is_tried_again_later(smsc: RawSmsc) -> None:
    bind = _bind(smsc)
    await bind.start()
    try:
        first = await smsc.peer(bind_status=ESME_RBINDFAIL)
        assert await asyncio.wait_for(first.reader.read(), 5) == b""
        assert not bind.is_up()
        await smsc.peer()
        assert await bind.wait_up(5)
    finally:
        await bind.close()


async def test_a_silent_smsc_is_enquired_and_then_dropped(
    smsc: RawSmsc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smpp, "ENQUIRE_INTERVAL", 0.2)
    monkeypatch.setattr(smpp, "IDLE_LIMIT", 0.6)
    async with bound(smsc, response_timeout=0.4) as (_, peer):
        await expect(peer, ENQUIRE_LINK)  # never answered
        await smsc.peer()  # so the bind gives up on the connection and binds again


async def test_close_unbinds(smsc: RawSmsc) -> None:
    bind = _bind(smsc)
    await bind.start()
    peer = await smsc.peer()
    assert await bind.wait_up(5)
    closing = asyncio.create_task(bind.close())
    sequence = (await expect(peer, UNBIND)).sequence
    await peer.send(frame(UNBIND_RESP, sequence))
    await asyncio.wait_for(closing, 5)
    assert await asyncio.wait_for(peer.reader.read(), 5) == b""
