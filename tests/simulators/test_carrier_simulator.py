"""The carrier simulator, run as a real process and driven over SMPP like a carrier would be."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import gsm0338  # noqa: F401  (registers the 'gsm03.38' codec)
import pytest

from tests.simulators.conftest import BindEsme, StartSimulator
from tests.simulators.harness import (
    ESME_RINVDSTADR,
    ESME_RTHROTTLED,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    RawEsme,
    RunningSimulator,
    eventually,
    http,
    receipt_fields,
    receipt_tlvs,
    stats,
)

pytestmark = pytest.mark.asyncio

EAT = timezone(timedelta(hours=3))


async def messages_to(carrier: RunningSimulator, recipient: str) -> list[dict[str, object]]:
    status, body = await http(carrier, "GET", f"/messages?recipient={recipient}")
    assert status == 200
    return body["data"]


async def test_ordinary_recipient_gets_a_delivered_receipt(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "mtn")
    before = datetime.now(EAT).strftime("%y%m%d%H%M")
    resp = await esme.submit("256771234567", b"Your code is 123456. Do not share it.")
    after = datetime.now(EAT).strftime("%y%m%d%H%M")
    assert resp.is_success and resp.message_id is not None
    assert len(resp.message_id) == 10 and int(resp.message_id, 16)

    receipt = await esme.receipt()
    assert receipt.esm_class == 0x04
    assert receipt.source_addr == "256771234567"
    assert receipt.destination_addr == "Wesendall"
    fields = receipt_fields(receipt)
    assert fields["id"] == resp.message_id
    assert (fields["sub"], fields["dlvrd"], fields["stat"], fields["err"]) == (
        "001",
        "001",
        "DELIVRD",
        "000",
    )
    assert fields["text"] == "Your code is 123456."
    assert fields["submit"] in (before, after)  # East Africa Time, not UTC
    assert fields["done"] >= fields["submit"]
    tlvs = receipt_tlvs(receipt)
    assert tlvs[TLV_RECEIPTED_MESSAGE_ID] == resp.message_id.encode() + b"\0"
    assert tlvs[TLV_MESSAGE_STATE] == bytes([2])
    assert TLV_NETWORK_ERROR_CODE not in tlvs

    [stored] = await messages_to(carrier, "+256771234567")
    assert stored["recipient"] == "+256771234567"
    assert stored["text"] == "Your code is 123456. Do not share it."
    assert stored["carrier"] == "mtn"
    assert stored["carrierMessageId"] == resp.message_id
    assert stored["parts"] == 1
    received = datetime.fromisoformat(str(stored["receivedAt"]).replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - received) < timedelta(seconds=30)
    assert str(stored["receivedAt"]).endswith("Z") and len(str(stored["receivedAt"])) == 24


async def test_111_is_rejected_permanently_without_a_receipt(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "airtel")
    rejected = await esme.submit("256700000111")
    assert not rejected.is_success
    assert rejected.command_status == ESME_RINVDSTADR
    # Receipts come in submit order, so the next one must be for the later message.
    later = await esme.submit("256751234567")
    assert receipt_fields(await esme.receipt())["id"] == later.message_id
    assert await messages_to(carrier, "+256700000111") == []
    counts = await stats(carrier)
    assert (counts["rejected"], counts["accepted"], counts["submits"]) == (1, 1, 2)


async def test_no_receipt_unless_one_is_requested(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "mtn")
    assert (await esme.submit("256771000001", registered_delivery=0)).is_success
    requested = await esme.submit("256771000002")
    assert receipt_fields(await esme.receipt())["id"] == requested.message_id


async def test_222_is_accepted_then_reported_undeliverable(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "mtn")
    resp = await esme.submit("256700000222", b"Reminder: your invoice is due")
    assert resp.is_success
    receipt = await esme.receipt()
    fields = receipt_fields(receipt)
    assert (fields["id"], fields["stat"], fields["dlvrd"]) == (resp.message_id, "UNDELIV", "000")
    assert int(fields["err"]) != 0
    tlvs = receipt_tlvs(receipt)
    assert tlvs[TLV_MESSAGE_STATE] == bytes([5])
    network_error = tlvs[TLV_NETWORK_ERROR_CODE]
    assert len(network_error) == 3 and int.from_bytes(network_error[1:], "big") != 0


async def test_333_is_throttled_once_per_message(carrier: RunningSimulator, bind: BindEsme) -> None:
    esme = await bind(carrier, "mtn")
    first = await esme.submit("256700000333", b"Hello 333")
    assert first.command_status == ESME_RTHROTTLED
    retry = await esme.submit("256700000333", b"Hello 333")
    assert retry.is_success
    assert receipt_fields(await esme.receipt())["stat"] == "DELIVRD"
    # The memory was cleared: the same message again is throttled once more.
    again = await esme.submit("256700000333", b"Hello 333")
    assert again.command_status == ESME_RTHROTTLED
    counts = await stats(carrier)
    assert (counts["throttled"], counts["accepted"]) == (2, 1)


async def test_gsm7_message_in_three_udh_parts_is_stored_once_joined(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "mtn")
    chunks = [
        "Karibu Wesendall! Pay UGX 5,000 @ any agent; " + "a" * 100 + " €",
        "Part two: {braces} [brackets] ~tilde^ |pipe| \\ " + "b" * 90,
        "Part three ends here: ÄÖÑÜ§¿ äöñüà _underscore_",
    ]
    encoded = [chunk.encode("gsm03.38") for chunk in chunks]
    assert all(len(part) <= 153 for part in encoded)
    assert b"\x1be" in encoded[0] and b"\x00" in encoded[0]  # '€' escaped, '@' is 0x00
    message_ids = []
    for seq, body in enumerate(encoded, start=1):
        udh = bytes([0x05, 0x00, 0x03, 0x2A, 3, seq])
        resp = await esme.submit("256772000001", udh + body, esm_class=0x40, data_coding=0)
        assert resp.is_success
        message_ids.append(resp.message_id)
        if seq < 3:
            assert await messages_to(carrier, "+256772000001") == []
    assert len(set(message_ids)) == 3

    [stored] = await messages_to(carrier, "+256772000001")
    assert stored["text"] == "".join(chunks)
    assert stored["parts"] == 3
    assert stored["carrierMessageId"] == message_ids[0]
    receipted = {receipt_fields(await esme.receipt())["id"] for _ in range(3)}
    assert receipted == set(message_ids)  # one receipt per part


async def test_ucs2_message_in_two_parts_with_a_16_bit_reference(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "airtel")
    chunks = ["Оплата получена. Спасибо! 😀 Ваш баланс пополнен.", " Webale nnyo — ✓ 🇺🇬"]
    encoded = [chunk.encode("utf-16-be") for chunk in chunks]
    assert all(len(part) <= 132 for part in encoded)
    for seq, body in enumerate(encoded, start=1):
        udh = bytes([0x06, 0x08, 0x04, 0x01, 0x2C, 2, seq])
        resp = await esme.submit("256752000002", udh + body, esm_class=0x40, data_coding=0x08)
        assert resp.is_success
    [stored] = await messages_to(carrier, "+256752000002")
    assert stored["text"] == "".join(chunks)
    assert (stored["parts"], stored["carrier"]) == (2, "airtel")


async def test_sar_tlvs_and_message_payload_are_understood(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    import smpp34

    esme = await bind(carrier, "mtn")
    for seq, text in enumerate(["First half, ", "second half."], start=1):
        sar = [
            smpp34.Tlv(0x020C, (700).to_bytes(2, "big")),
            smpp34.Tlv(0x020E, bytes([2])),
            smpp34.Tlv(0x020F, bytes([seq])),
        ]
        assert (await esme.submit("256773000003", text.encode("gsm03.38"), tlvs=sar)).is_success
    [joined] = await messages_to(carrier, "+256773000003")
    assert (joined["text"], joined["parts"]) == ("First half, second half.", 2)

    long_text = "Long message carried in message_payload. " * 10
    payload = [smpp34.Tlv(0x0424, long_text.encode("gsm03.38"))]
    assert (await esme.submit("256773000004", b"", tlvs=payload)).is_success
    [whole] = await messages_to(carrier, "+256773000004")
    assert (whole["text"], whole["parts"]) == (long_text, 1)


async def test_receipts_wait_for_a_new_bind_after_the_session_dropped(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    first = await RawEsme.bind(carrier.smpp_port, "mtn")
    await http(carrier, "POST", "/config", {"paused": True})
    sent = [await first.submit(f"25677400000{n}") for n in range(3)]
    await first.drop()
    await eventually(lambda: _binds_are(carrier, {}))
    await http(carrier, "POST", "/config", {"paused": False})
    assert (await stats(carrier))["receipts_pending"] == 3

    second = await bind(carrier, "mtn")
    receipted = [receipt_fields(await second.receipt())["id"] for _ in sent]
    assert sorted(receipted) == sorted(sent)
    await eventually(lambda: _stat_is(carrier, "receipts_pending", 0))


async def test_a_receipt_in_flight_when_its_session_dies_is_delivered_again(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    crashing = await RawEsme.bind(carrier.smpp_port, "airtel")
    message_id = await crashing.submit("256756000001")
    command_id, body = await crashing.unanswered_pdu()
    assert command_id == 0x00000005 and message_id.encode() in body  # deliver_sm, no resp
    await crashing.drop()

    replacement = await bind(carrier, "airtel")
    assert receipt_fields(await replacement.receipt())["id"] == message_id
    await eventually(lambda: _stat_is(carrier, "receipts_pending", 0))


async def test_receipt_goes_to_a_sibling_session_when_its_own_has_gone(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    submitting = await RawEsme.bind(carrier.smpp_port, "mtn")
    sibling = await bind(carrier, "mtn")
    await http(carrier, "POST", "/config", {"paused": True})
    message_id = await submitting.submit("256775000001")
    await submitting.drop()
    await eventually(lambda: _binds_are(carrier, {"mtn": 1}))
    await http(carrier, "POST", "/config", {"paused": False})
    assert receipt_fields(await sibling.receipt())["id"] == message_id


async def test_receipts_reach_a_separate_receiver_bind(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    transmitter = await bind(carrier, "airtel", bind_type="TX")
    receiver = await bind(carrier, "airtel", bind_type="RX")
    sent = [str((await transmitter.submit(f"25675700000{n}")).message_id) for n in range(5)]
    receipted = [receipt_fields(await receiver.receipt())["id"] for _ in sent]
    assert sorted(receipted) == sorted(sent)
    await eventually(lambda: _stat_is(carrier, "receipts_pending", 0))
    assert receiver.inbox.empty()


async def test_an_unknown_system_id_is_served_under_its_own_name(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "acme01")
    resp = await esme.submit("256701000001")
    assert receipt_fields(await esme.receipt())["id"] == resp.message_id
    [stored] = await messages_to(carrier, "+256701000001")
    assert stored["carrier"] == "acme01"
    assert (await stats(carrier))["binds"] == {"acme01": 1}


async def test_stats_count_duplicates_until_reset(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "mtn")
    for body in (b"Same text", b"Same text", b"Other text", b"Same text"):
        assert (await esme.submit("256776000001", body)).is_success
    assert (await esme.submit("256776000002", b"Same text")).is_success
    counts = await stats(carrier)
    assert (counts["messages"], counts["duplicates"]) == (5, 2)
    assert counts["binds"] == {"mtn": 1}

    status, _ = await http(carrier, "DELETE", "/messages")
    assert status == 200
    counts = await stats(carrier)
    assert (counts["messages"], counts["duplicates"], counts["submits"]) == (0, 0, 0)
    assert await messages_to(carrier, "+256776000001") == []


async def test_paused_receipts_are_held_until_unpaused(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "mtn")
    status, config = await http(carrier, "POST", "/config", {"paused": True, "receipt_delay": 0})
    assert status == 200 and config["paused"] is True
    resp = await esme.submit("256777000001")
    assert resp.is_success
    with pytest.raises(TimeoutError):
        await esme.receipt(timeout=0.5)
    assert (await stats(carrier))["receipts_pending"] == 1

    await http(carrier, "POST", "/config", {"paused": False})
    assert receipt_fields(await esme.receipt())["id"] == resp.message_id


async def test_config_rejects_unknown_or_mistyped_settings(carrier: RunningSimulator) -> None:
    for body in ({"paused": "yes"}, {"receipt_delay": -1}, {"speed": 2}, [1]):
        status, error = await http(carrier, "POST", "/config", body)
        assert status == 422 and error["error"]["code"] == "validation_failed"


async def test_submit_delay_holds_each_response(carrier: RunningSimulator, bind: BindEsme) -> None:
    esme = await bind(carrier, "mtn")
    await http(carrier, "POST", "/config", {"submit_delay": 0.4})
    started = asyncio.get_running_loop().time()
    assert (await esme.submit("256778000001", registered_delivery=0)).is_success
    assert asyncio.get_running_loop().time() - started >= 0.35


async def test_decimal_receipt_ids_quote_the_hex_id_in_decimal(
    start_carrier: StartSimulator, bind: BindEsme
) -> None:
    carrier = start_carrier("--receipt-delay", "0.05", "--receipt-id-format", "decimal")
    esme = await bind(carrier, "mtn")
    resp = await esme.submit("256779000001")
    assert resp.message_id is not None
    receipt = await esme.receipt()
    receipted = receipt_fields(receipt)["id"]
    assert receipted.isdigit() and receipted != resp.message_id
    assert int(receipted) == int(resp.message_id, 16)
    assert receipt_tlvs(receipt)[TLV_RECEIPTED_MESSAGE_ID] == receipted.encode() + b"\0"


async def test_recipient_filter_takes_any_form_and_limit(
    carrier: RunningSimulator, bind: BindEsme
) -> None:
    esme = await bind(carrier, "mtn")
    for n in range(3):
        assert (await esme.submit("256779100001", f"Message {n}".encode())).is_success
    for form in ("%2B256779100001", "+256779100001", "256779100001", "0779100001"):
        texts = [m["text"] for m in await messages_to(carrier, form)]
        assert texts == ["Message 0", "Message 1", "Message 2"], form
    status, body = await http(carrier, "GET", "/messages?limit=2")
    assert status == 200
    assert [m["text"] for m in body["data"]] == ["Message 1", "Message 2"]


async def _binds_are(carrier: RunningSimulator, binds: dict[str, int]) -> bool:
    return (await stats(carrier))["binds"] == binds


async def _stat_is(carrier: RunningSimulator, name: str, value: int) -> bool:
    return (await stats(carrier))[name] == value
