"""Our SMPP bind against an SMSC we did not write: smpp34's server (a Rust implementation).

The carrier simulator and the bind are both ours, so a mistake made the same way on both
sides would pass every other test; these catch it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import smpp34

from services.sender.carriers.base import Submission, SubmitKind
from services.sender.carriers.smpp import SmppBind, SmppBindConfig
from services.sender.receipts import Receipt
from tests.infra import free_port

RECEIPT_TEXT = (
    b"id:7f3a sub:001 dlvrd:001 submit date:2611221200 done date:2611221201 "
    b"stat:DELIVRD err:000 text:hello"
)


class Smsc:
    """smpp34's server, with its events collected as they come."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server = smpp34.Server("127.0.0.1", port, system_id="SMSC")
        self.sessions: list[smpp34.Esme] = []
        self.submits: asyncio.Queue[smpp34.SubmitSmEvent] = asyncio.Queue()
        self._bound = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        self._task = asyncio.create_task(self._events())

    async def stop(self) -> None:
        await self.server.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.sleep(0.2)  # smpp34's threads must settle before the loop closes

    async def session(self) -> smpp34.Esme:
        async with asyncio.timeout(5):
            await self._bound.wait()
        return self.sessions[-1]

    async def _events(self) -> None:
        while True:
            try:
                event = await self.server.next()
            except smpp34.SmppError:
                return
            if isinstance(event, smpp34.SubmitSmEvent):
                self.submits.put_nowait(event)
            elif isinstance(event, smpp34.Esme):
                self.sessions.append(event)
                self._bound.set()


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    server = Smsc(free_port())
    await server.start()
    yield server
    await server.stop()


async def _bound(smsc: Smsc, received: list[Receipt], **settings: Any) -> SmppBind:
    config = SmppBindConfig(
        "127.0.0.1", smsc.port, "mtn", "secret", reconnect_min=0.1, reconnect_max=1.0, **settings
    )
    bind = SmppBind("mtn", config, received.append)
    await bind.start()
    assert await bind.wait_up(5)
    return bind


async def test_submit_sm_fields_read_back_by_another_implementation(smsc: Smsc) -> None:
    bind = await _bound(smsc, [], bind_type="TX", source_addr="Wesendall")
    try:
        submitting = asyncio.create_task(
            bind.submit(Submission("+256772123456", [b"hello"], 8, 0x40, None))
        )
        async with asyncio.timeout(5):
            event = await smsc.submits.get()
        assert event.destination_addr == "256772123456"
        assert event.source_addr == "Wesendall"
        assert (event.source_addr_ton, event.dest_addr_ton, event.dest_addr_npi) == (5, 1, 1)
        assert event.short_message == b"hello"
        assert (event.esm_class, event.data_coding, event.registered_delivery) == (0x40, 8, 1)
        event.accept("abc123")
        outcome = await submitting
        assert outcome.kind is SubmitKind.OK
        assert outcome.carrier_message_ids == ["abc123"]
    finally:
        await bind.close()


async def test_a_refused_submit_is_classified_from_its_status(smsc: Smsc) -> None:
    bind = await _bound(smsc, [], bind_type="TX")
    try:
        submitting = asyncio.create_task(
            bind.submit(Submission("256700000111", [b"x"], 0, 0, None))
        )
        async with asyncio.timeout(5):
            (await smsc.submits.get()).reject(0x0B)  # ESME_RINVDSTADR
        outcome = await submitting
        assert outcome.kind is SubmitKind.PERMANENT
        assert outcome.error_code == "ESME_RINVDSTADR"
    finally:
        await bind.close()


async def test_a_receipt_on_a_transceiver_bind_is_read_and_answered(smsc: Smsc) -> None:
    received: list[Receipt] = []
    bind = await _bound(smsc, received, bind_type="TRX")
    try:
        session = await smsc.session()
        tlvs = [
            smpp34.Tlv(0x001E, b"7f3a\0"),  # receipted_message_id
            smpp34.Tlv(0x0427, bytes([2])),  # message_state DELIVERED
        ]
        async with asyncio.timeout(5):
            response = await asyncio.ensure_future(
                session.deliver_sm("Wesendall", RECEIPT_TEXT, esm_class=0x04, tlvs=tlvs)
            )
        assert response.command_status == 0
        assert [(r.carrier_message_id, r.state) for r in received] == [("7f3a", "DELIVRD")]
    finally:
        await bind.close()
