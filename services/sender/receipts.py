"""Delivery receipts: turn a carrier's deliver_sm into a Receipt, and a Receipt into our status.

Pure functions, no I/O. Carriers disagree on the receipt format, so the parser prefers the
SMPP 3.4 TLVs (§5.3.2) and falls back to a tolerant reading of the "vendor specific but
typical" Appendix B text; it never raises on what a carrier sends.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from services.sender.carriers import wire

# esm_class bits 2-5 carry the message type (SMPP 3.4 §5.2.12); 0x04 = SMSC delivery receipt.
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_DELIVERY_RECEIPT = 0x04

# Optional parameter tags (SMPP 3.4 §5.3.2.12, §5.3.2.35, §5.3.2.31).
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423

# message_state values (SMPP 3.4 §5.2.28; SCHEDLD and SKIPPED are SMPP 5.0 additions).
STATE_BY_CODE: dict[int, str] = {
    0: "SCHEDLD",
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
    9: "SKIPPED",
}
KNOWN_STATES = frozenset(STATE_BY_CODE.values())

# Spelled-out stat words some SMSCs send instead of the 7-letter ones.
_STATE_ALIASES = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "UNDELIVERED": "UNDELIV",
    "ACCEPTED": "ACCEPTD",
    "REJECTED": "REJECTD",
    "SCHEDULED": "SCHEDLD",
}

_UNDELIVERED_STATES = frozenset({"UNDELIV", "EXPIRED", "DELETED", "REJECTD", "SKIPPED"})

# A key is a word at the start of the text or after whitespace, followed by a colon. The two
# dates are matched first so "submit date" is one key, not "submit" plus "date"; any other
# word (a vendor's own key) is matched too so that its value does not leak into a known field.
_KEY = re.compile(r"(?<!\S)(submit[ _]date|done[ _]date|[A-Za-z][A-Za-z_]*)\s*:", re.IGNORECASE)
_HEX_DIGITS = frozenset(string.hexdigits)


@dataclass(frozen=True, slots=True)
class Receipt:
    """One delivery receipt as the carrier reported it (dates kept raw, zone unknown)."""

    carrier_message_id: str
    state: str
    error_code: str | None
    recipient: str | None
    submit_date: str | None
    done_date: str | None
    text: str | None
    raw: bytes


def parse_receipt(
    esm_class: int,
    source_addr: str,
    short_message: bytes,
    tlvs: Sequence[tuple[int, bytes]],
) -> Receipt | None:
    """Parse a deliver_sm into a Receipt; None if it is not a receipt or carries no message id."""
    if esm_class & ESM_CLASS_TYPE_MASK != ESM_CLASS_DELIVERY_RECEIPT:
        return None
    tlv_id, tlv_state, tlv_error = _from_tlvs(tlvs)
    text = _decode(short_message)
    if tlv_id and tlv_state and (tlv_error or tlv_state == "DELIVRD"):
        # The TLVs say all that is acted on; of the text only `text:` is wanted (to tell
        # apart two messages to one handset), and finding it is far cheaper than parsing
        # the rest (the dates, which nothing uses, are then left out).
        at = text.lower().find("text:")
        fields = {"text": text[at + 5 :]} if at >= 0 else {}
    else:
        fields = _text_fields(text)

    message_id = tlv_id or _first_word(fields.get("id"))
    if not message_id:
        return None
    state = tlv_state or _normalise_state(fields.get("stat"))
    recipient = wire.address_digits(source_addr) or None
    return Receipt(
        carrier_message_id=message_id,
        state=state,
        error_code=tlv_error or _first_word(fields.get("err")),
        recipient=recipient,
        submit_date=fields.get("submit date") or None,
        done_date=fields.get("done date") or None,
        text=fields.get("text"),
        raw=short_message,
    )


def final_status(state: str, accepted_is_final: bool = False) -> str | None:
    """Map a stat word to our message status; None means "no change" (intermediate/unknown)."""
    if state == "DELIVRD":
        return "delivered"
    if state in _UNDELIVERED_STATES:
        # The carrier accepted the message, so per product policy it is not refunded.
        return "undelivered"
    if state == "ACCEPTD" and accepted_is_final:
        # Spec-wise ACCEPTD is final ("read on the subscriber's behalf", §5.2.28), but many
        # SMSCs use it as an intermediate state, so it is a per-carrier choice.
        return "delivered"
    return None


def id_candidates(carrier_message_id: str) -> list[str]:
    """The raw id, then its hex/decimal equivalents to try when exact matching fails.

    Some SMSCs answer submit_sm with a hex message_id and put the same number in decimal
    (often zero-padded) into the receipt, or the reverse.
    """
    raw = carrier_message_id
    candidates = [raw, raw.lstrip("0") or ("0" if raw else "")]
    if raw.isascii() and raw.isdigit():
        number = int(raw)
        for width in (0, 8, 10):
            candidates += [f"{number:0{width}X}", f"{number:0{width}x}"]
    elif raw and all(ch in _HEX_DIGITS for ch in raw):
        number = int(raw, 16)
        candidates += [str(number), f"{number:010d}", f"{number:020d}"]
    return [c for c in dict.fromkeys(candidates) if c]


def _from_tlvs(tlvs: Sequence[tuple[int, bytes]]) -> tuple[str | None, str | None, str | None]:
    message_id = state = error = None
    for tag, value in tlvs:
        if tag == TLV_RECEIPTED_MESSAGE_ID:
            # C-Octet String: everything up to the first NUL.
            message_id = _decode(value.split(b"\x00", 1)[0]).strip() or None
        elif tag == TLV_MESSAGE_STATE and len(value) == 1:
            state = STATE_BY_CODE.get(value[0])
        elif tag == TLV_NETWORK_ERROR_CODE and len(value) == 3:
            # Octet 1 is the network type (GSM, ANSI-136, ...), octets 2-3 the code; rendered
            # like the Appendix B `err:` field so both sources look alike.
            error = f"{int.from_bytes(value[1:], 'big'):03d}"
    return message_id, state, error


def _text_fields(text: str) -> dict[str, str]:
    """Split Appendix B text into lower-cased keys; everything after `text:` is the text."""
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for index, match in enumerate(matches):
        key = match.group(1).lower().replace("_", " ")
        if key == "text":
            fields["text"] = text[match.end() :]
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        # The first occurrence wins: a vendor repeating a key later is not trusted over it.
        fields.setdefault(key, text[match.end() : end].strip())
    return fields


def _first_word(value: str | None) -> str | None:
    # Ids, stat words and error codes never contain blanks; anything after one is noise.
    words = value.split() if value else []
    return words[0] if words else None


def _normalise_state(stat: str | None) -> str:
    word = (_first_word(stat) or "").upper()
    if word.isascii() and word.isdigit():
        return STATE_BY_CODE.get(int(word), "UNKNOWN")
    word = _STATE_ALIASES.get(word, word)
    return word if word in KNOWN_STATES else "UNKNOWN"


def _decode(data: bytes) -> str:
    # Receipt text is ASCII in practice; Latin-1 never fails, so garbage still parses.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
