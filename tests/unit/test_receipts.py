"""Delivery receipt parsing: Appendix B text variants, TLVs, garbage, and id equivalence."""

from __future__ import annotations

import pytest

from services.sender.receipts import (
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    Receipt,
    final_status,
    id_candidates,
    parse_receipt,
)

RECEIPT = 0x04
HANDSET = "256700000112"


def parse_text(text: str, *, esm_class: int = RECEIPT, source: str = HANDSET) -> Receipt | None:
    return parse_receipt(esm_class, source, text.encode(), [])


def summary(receipt: Receipt) -> tuple[str, str, str | None]:
    return receipt.carrier_message_id, receipt.state, receipt.error_code


def test_standard_appendix_b_receipt_yields_every_field() -> None:
    raw = (
        "id:0123456789 sub:001 dlvrd:001 submit date:2311221530 done date:2311221531 "
        "stat:DELIVRD err:000 Text:Your code is 4821"
    )
    receipt = parse_text(raw)
    assert receipt == Receipt(
        carrier_message_id="0123456789",
        state="DELIVRD",
        error_code="000",
        recipient=HANDSET,
        submit_date="2311221530",
        done_date="2311221531",
        text="Your code is 4821",
        raw=raw.encode(),
    )


def test_twelve_digit_dates_are_kept_raw() -> None:
    receipt = parse_text(
        "id:77 sub:001 dlvrd:000 submit date:231122153012 done date:231122153109 "
        "stat:UNDELIV err:001 text:hello"
    )
    assert receipt is not None
    assert (receipt.submit_date, receipt.done_date) == ("231122153012", "231122153109")
    assert receipt.state == "UNDELIV"


def test_lower_case_text_key_and_everything_after_it_is_the_text() -> None:
    receipt = parse_text("id:5 stat:DELIVRD err:000 text:id:9 stat:UNDELIV is not a field")
    assert receipt is not None
    assert receipt.carrier_message_id == "5"
    assert receipt.state == "DELIVRD"
    assert receipt.text == "id:9 stat:UNDELIV is not a field"


@pytest.mark.parametrize("err", ["000", "0x0B", "1f", "NACK:E05", "E123"])
def test_err_is_kept_as_sent_whatever_its_base(err: str) -> None:
    receipt = parse_text(f"id:1 sub:001 dlvrd:000 stat:REJECTD err:{err} text:x")
    assert receipt is not None
    assert receipt.error_code == err.split()[0]


def test_missing_sub_and_dlvrd_are_tolerated() -> None:
    receipt = parse_text("id:ab12 submit date:2311221530 done date:2311221531 stat:EXPIRED err:0")
    assert receipt is not None
    assert summary(receipt) == ("ab12", "EXPIRED", "0")
    assert receipt.text is None


def test_minimal_receipt_has_id_and_state_only() -> None:
    receipt = parse_text("id:3 stat:DELIVRD")
    assert receipt is not None
    assert (receipt.carrier_message_id, receipt.state) == ("3", "DELIVRD")
    assert receipt.error_code is receipt.submit_date is receipt.done_date is receipt.text is None


def test_keys_are_case_insensitive_and_unknown_keys_do_not_leak() -> None:
    receipt = parse_text("ID:42 SUB:001 DLVRD:001 vendor_ref:XYZ 99 Stat:delivrd ERR:000")
    assert receipt is not None
    assert summary(receipt) == ("42", "DELIVRD", "000")


def test_spelled_out_and_unrecognised_stat_words() -> None:
    delivered = parse_text("id:1 stat:DELIVERED")
    odd = parse_text("id:1 stat:WHATEVER")
    assert delivered is not None and delivered.state == "DELIVRD"
    assert odd is not None and odd.state == "UNKNOWN"


def test_recipient_is_the_handset_as_digits() -> None:
    receipt = parse_text("id:1 stat:DELIVRD", source="+256 700 000112")
    assert receipt is not None and receipt.recipient == HANDSET
    assert (r := parse_text("id:1 stat:DELIVRD", source="")) is not None and r.recipient is None


def test_tlvs_win_over_the_text() -> None:
    receipt = parse_receipt(
        RECEIPT,
        HANDSET,
        b"id:999 stat:UNDELIV err:001 text:hi",
        [
            (TLV_RECEIPTED_MESSAGE_ID, b"1A2B\x00"),
            (TLV_MESSAGE_STATE, b"\x02"),
            (TLV_NETWORK_ERROR_CODE, b"\x03\x00\x0b"),
        ],
    )
    assert receipt is not None
    assert summary(receipt) == ("1A2B", "DELIVRD", "011")
    assert receipt.text == "hi"


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (0, "SCHEDLD"),
        (1, "ENROUTE"),
        (3, "EXPIRED"),
        (4, "DELETED"),
        (5, "UNDELIV"),
        (6, "ACCEPTD"),
        (7, "UNKNOWN"),
        (8, "REJECTD"),
        (9, "SKIPPED"),
    ],
)
def test_tlv_only_receipt_maps_message_state(code: int, state: str) -> None:
    receipt = parse_receipt(
        RECEIPT,
        HANDSET,
        b"",
        [(TLV_RECEIPTED_MESSAGE_ID, b"m-1\x00"), (TLV_MESSAGE_STATE, bytes([code]))],
    )
    assert receipt is not None
    assert (receipt.carrier_message_id, receipt.state, receipt.text) == ("m-1", state, None)


def test_text_fills_what_the_tlvs_did_not_give() -> None:
    receipt = parse_receipt(
        RECEIPT, HANDSET, b"id:7 stat:EXPIRED err:027", [(TLV_RECEIPTED_MESSAGE_ID, b"7")]
    )
    assert receipt is not None
    assert summary(receipt) == ("7", "EXPIRED", "027")


@pytest.mark.parametrize(
    "short_message",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"stat:DELIVRD err:000",
        b"id: stat:DELIVRD",
        b":::: id",
        b"text:id:5",
    ],
)
def test_garbage_without_an_id_is_not_a_receipt(short_message: bytes) -> None:
    assert (
        parse_receipt(RECEIPT, HANDSET, short_message, [(TLV_MESSAGE_STATE, b"\x02\x02")]) is None
    )


def test_garbage_text_with_an_id_from_tlvs_is_still_a_receipt() -> None:
    receipt = parse_receipt(
        RECEIPT, HANDSET, b"\x00\xff\xfe garbage", [(TLV_RECEIPTED_MESSAGE_ID, b"55\x00")]
    )
    assert receipt is not None
    assert (receipt.carrier_message_id, receipt.state) == ("55", "UNKNOWN")


@pytest.mark.parametrize("esm_class", [0x00, 0x08, 0x10, 0x20, 0x40])
def test_mobile_originated_and_other_message_types_are_not_receipts(esm_class: int) -> None:
    assert parse_text("id:1 stat:DELIVRD", esm_class=esm_class) is None


def test_receipt_type_is_read_from_the_type_bits_only() -> None:
    # Bits 0-1 (messaging mode) and 6-7 (GSM features) do not change the message type.
    assert parse_text("id:1 stat:DELIVRD", esm_class=0x04 | 0x03 | 0x40) is not None


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("DELIVRD", "delivered"),
        ("UNDELIV", "undelivered"),
        ("EXPIRED", "undelivered"),
        ("DELETED", "undelivered"),
        ("REJECTD", "undelivered"),
        ("SKIPPED", "undelivered"),
        ("ENROUTE", None),
        ("SCHEDLD", None),
        ("ACCEPTD", None),
        ("UNKNOWN", None),
    ],
)
def test_final_status(state: str, status: str | None) -> None:
    assert final_status(state) == status


def test_accepted_is_delivered_only_when_the_carrier_treats_it_as_final() -> None:
    assert final_status("ACCEPTD", accepted_is_final=True) == "delivered"
    assert final_status("ENROUTE", accepted_is_final=True) is None


def test_decimal_id_candidates_include_hex_forms() -> None:
    assert id_candidates("0000012345") == ["0000012345", "12345", "3039", "00003039", "0000003039"]
    assert id_candidates("3000000000")[:4] == ["3000000000", "B2D05E00", "b2d05e00", "00B2D05E00"]


def test_hex_id_candidates_include_decimal_forms() -> None:
    assert id_candidates("00b2d05e00") == [
        "00b2d05e00",
        "b2d05e00",
        "3000000000",
        "00000000003000000000",
    ]


def test_hex_and_decimal_forms_of_one_id_find_each_other_both_ways() -> None:
    assert "B2D05E00" in id_candidates("3000000000")
    assert "3000000000" in id_candidates("B2D05E00")
    # A hex id without letters looks decimal; the receipt's decimal form still reaches it.
    assert "3039" in id_candidates("0000012345")


def test_other_ids_only_get_leading_zeros_stripped() -> None:
    assert id_candidates("0a-17-uuid") == ["0a-17-uuid", "a-17-uuid"]
    assert id_candidates("") == []


def test_tlv_receipts_keep_the_text_that_tells_messages_apart() -> None:
    text = (
        b"id:7 sub:001 dlvrd:001 submit date:2611220000 done date:2611220001"
        b" stat:DELIVRD err:000 text:Your code: text:42"
    )
    receipt = parse_receipt(
        0x04,
        "256772123456",
        text,
        [(0x001E, b"7\0"), (0x0427, bytes([2]))],
    )
    assert receipt is not None
    assert (receipt.carrier_message_id, receipt.state) == ("7", "DELIVRD")
    assert receipt.text == "Your code: text:42"


def test_an_error_only_in_the_text_is_kept_when_the_tlvs_lack_it() -> None:
    text = b"id:8 stat:UNDELIV err:027 text:hello"
    receipt = parse_receipt(0x04, "256772123456", text, [(0x001E, b"8\0"), (0x0427, bytes([5]))])
    assert receipt is not None
    assert (receipt.state, receipt.error_code) == ("UNDELIV", "027")
