"""The carrier simulator's SMPP server in raw bytes: binds, correlation, framing, errors."""

from __future__ import annotations

import asyncio
import signal

import pytest

from simulators.carrier import outbox
from simulators.carrier.settings import SimulatorSettings
from simulators.carrier.smsc import CarrierSmsc
from tests.infra import free_port
from tests.simulators.conftest import BindEsme, StartSimulator
from tests.simulators.harness import RunningSimulator, eventually, http, stats
from tests.simulators.raw_smpp import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RX_T_APPN,
    GENERIC_NACK,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    UNBIND,
    UNBIND_RESP,
    RawSmpp,
    bind_body,
    frame,
    receipt_id,
    submit_sm_body,
)

pytestmark = pytest.mark.asyncio


async def test_receiver_bind_gets_a_receipt_again_until_it_answers_0(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    transmitter = await bind(carrier, "mtn", bind_type="TX")
    receiver = await RawSmpp.bound(carrier.smpp_port, "mtn", BIND_RECEIVER)
    try:
        message_id = (await transmitter.submit("256780000001")).message_id
        first = await receiver.read()
        assert receipt_id(first) == message_id
        await receiver.answer(first, ESME_RX_T_APPN)  # "could not store it, try again later"

        second = await receiver.read()
        assert receipt_id(second) == message_id and second.sequence != first.sequence
        await receiver.send(frame(GENERIC_NACK, second.sequence, status=0x08))

        third = await receiver.read()
        assert receipt_id(third) == message_id
        await receiver.answer(third)
        await receiver.nothing_within(0.6)  # retries start at 0.1 s: none is coming
        counts = await stats(carrier)
        assert (counts["receipts_sent"], counts["receipt_retries"]) == (1, 2)
        assert counts["receipts_pending"] == 0
    finally:
        await receiver.close()


async def test_a_transmitter_bind_is_never_sent_a_receipt(carrier: RunningSimulator) -> None:
    transmitter = await RawSmpp.bound(carrier.smpp_port, "airtel", BIND_TRANSMITTER)
    try:
        message_id = await transmitter.submit("256750000001")
        await transmitter.nothing_within(0.5)
        assert (await stats(carrier))["receipts_pending"] == 1

        receiver = await RawSmpp.bound(carrier.smpp_port, "airtel", BIND_RECEIVER)
        try:
            receipt = await receiver.read()
            assert receipt_id(receipt) == message_id
            await receiver.answer(receipt)
        finally:
            await receiver.close()
        await transmitter.nothing_within(0.2)
    finally:
        await transmitter.close()


async def test_enquire_link_is_answered_bound_or_not(carrier: RunningSimulator) -> None:
    esme = await RawSmpp.connect(carrier.smpp_port)
    try:
        resp = await esme.request(ENQUIRE_LINK)
        assert (resp.command_id, resp.status, resp.body) == (ENQUIRE_LINK_RESP, 0, b"")
        await esme.request(BIND_TRANSCEIVER, bind_body("mtn"))
        resp = await esme.request(ENQUIRE_LINK)
        assert (resp.command_id, resp.status) == (ENQUIRE_LINK_RESP, 0)
    finally:
        await esme.close()


async def test_an_unknown_command_gets_generic_nack_and_the_session_goes_on(
    carrier: RunningSimulator,
) -> None:
    esme = await RawSmpp.bound(carrier.smpp_port, "mtn", BIND_TRANSCEIVER)
    try:
        nack = await esme.request(0x000000FE)
        assert (nack.command_id, nack.status) == (GENERIC_NACK, ESME_RINVCMDID)
        assert await esme.submit("256780000002")
    finally:
        await esme.close()


async def test_a_second_bind_on_one_connection_is_refused(carrier: RunningSimulator) -> None:
    esme = await RawSmpp.bound(carrier.smpp_port, "mtn", BIND_TRANSCEIVER)
    try:
        resp = await esme.request(BIND_RECEIVER, bind_body("airtel"))
        assert (resp.command_id, resp.status) == (BIND_RECEIVER | 0x80000000, ESME_RALYBND)
        assert await esme.submit("256780000003")
        assert (await stats(carrier))["binds"] == {"mtn": 1}
    finally:
        await esme.close()


async def test_submit_before_bind_is_refused(carrier: RunningSimulator) -> None:
    esme = await RawSmpp.connect(carrier.smpp_port)
    try:
        resp = await esme.request(SUBMIT_SM, submit_sm_body("256780000004", b"Hi"))
        assert (resp.command_id, resp.status) == (SUBMIT_SM_RESP, ESME_RINVBNDSTS)
        assert (await stats(carrier))["submits"] == 0
    finally:
        await esme.close()


async def test_a_pdu_split_across_segments_is_read_whole(carrier: RunningSimulator) -> None:
    esme = await RawSmpp.connect(carrier.smpp_port)
    try:
        data = frame(BIND_TRANSCEIVER, 1, bind_body("mtn")) + frame(
            SUBMIT_SM, 2, submit_sm_body("256780000005", b"Split on the wire", 0)
        )
        pieces = [data[:3], data[3:16], data[16:17]]  # inside the header, at its end, one octet
        pieces += [data[n : n + 5] for n in range(17, len(data), 5)]
        for piece in pieces:
            await esme.send(piece)
            await asyncio.sleep(0.005)
        bind_resp, submit_resp = await esme.read(), await esme.read()
        assert (bind_resp.sequence, bind_resp.status) == (1, 0)
        assert (submit_resp.command_id, submit_resp.sequence, submit_resp.status) == (
            SUBMIT_SM_RESP,
            2,
            0,
        )
        status, body = await http(carrier, "GET", "/messages?recipient=256780000005")
        assert status == 200
        assert [m["text"] for m in body["data"]] == ["Split on the wire"]
    finally:
        await esme.close()


async def test_many_pdus_in_one_segment_are_all_answered_in_order(
    carrier: RunningSimulator,
) -> None:
    esme = await RawSmpp.connect(carrier.smpp_port)
    try:
        submits = [
            frame(SUBMIT_SM, n, submit_sm_body(f"2567810{n:05d}", b"Batch %d" % n, 0))
            for n in range(2, 202)
        ]
        data = frame(BIND_TRANSCEIVER, 1, bind_body("mtn")) + b"".join(submits)
        await esme.send(data + frame(ENQUIRE_LINK, 202))
        answers = [await esme.read() for _ in range(202)]
        assert [a.sequence for a in answers] == list(range(1, 203))
        assert all(a.status == 0 for a in answers)
        assert {a.command_id for a in answers[1:-1]} == {SUBMIT_SM_RESP}
        assert len({a.body for a in answers[1:-1]}) == 200  # a message id each
        assert answers[-1].command_id == ENQUIRE_LINK_RESP
        assert (await stats(carrier))["accepted"] == 200
    finally:
        await esme.close()


@pytest.mark.parametrize("command_length", [0, 15, 64 * 1024 + 1, 0xFFFFFFFF])
async def test_a_bad_command_length_closes_the_connection(
    carrier: RunningSimulator, command_length: int
) -> None:
    esme = await RawSmpp.bound(carrier.smpp_port, "mtn", BIND_TRANSCEIVER)
    try:
        await esme.send(
            command_length.to_bytes(4, "big") + SUBMIT_SM.to_bytes(4, "big") + bytes(8) + bytes(32)
        )
        assert await esme.closed_by_peer()
        await eventually(lambda: _no_binds(carrier))
    finally:
        await esme.close()


async def test_stopping_unbinds_every_session(start_carrier: StartSimulator) -> None:
    carrier = start_carrier()
    esme = await RawSmpp.bound(carrier.smpp_port, "mtn", BIND_RECEIVER)
    try:
        carrier.process.send_signal(signal.SIGTERM)
        unbind = await esme.read()
        assert unbind.command_id == UNBIND
        await esme.send(frame(UNBIND_RESP, unbind.sequence))
        assert await esme.closed_by_peer()
        assert await asyncio.to_thread(carrier.process.wait, 10) == 0
    finally:
        await esme.close()


async def test_an_unanswered_receipt_is_sent_again_after_the_response_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "RESPONSE_TIMEOUT", 0.3)
    settings = SimulatorSettings(smpp_port=free_port(), receipt_delay=0)
    smsc = CarrierSmsc(settings)
    await smsc.start()
    try:
        esme = await RawSmpp.bound(settings.smpp_port, "mtn", BIND_TRANSCEIVER)
        message_id = await esme.submit("256782000001")
        first = await esme.read()  # left unanswered
        again = await esme.read(timeout=3)
        assert (again.command_id, receipt_id(again)) == (DELIVER_SM, message_id)
        await esme.answer(again)
        await esme.answer(first)  # too late: that one was given up on already
        await esme.nothing_within(0.6)
        counts = smsc.stats()
        assert (counts["receipts_sent"], counts["receipt_retries"]) == (1, 1)
        assert counts["receipts_pending"] == 0
        await esme.close()
    finally:
        await smsc.stop()


async def _no_binds(carrier: RunningSimulator) -> bool:
    return (await stats(carrier))["binds"] == {}
