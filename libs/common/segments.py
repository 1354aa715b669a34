"""SMS segments: how many parts a text needs (what we bill) and its SMPP encoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

# 3GPP TS 23.038 §6.2.1 default alphabet, indexed by septet. 0x1B is the escape to the extension
# table, not a character we can send, so a literal ESC in a text forces UCS-2.
GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# TS 23.038 §6.2.1.1 extension table: sent as ESC + code, so each costs two septets.
GSM7_EXTENSION: Final = {
    "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}  # fmt: skip

DATA_CODING_GSM7: Final = 0x00
DATA_CODING_UCS2: Final = 0x08
ESM_CLASS_UDHI: Final = 0x40

_ESC: Final = 0x1B
# One SMS carries 140 octets of user data: 160 septets or 70 UTF-16 units. A concatenated part
# gives 6 octets to the UDH, leaving 153 septets or 67 units (TS 23.040 §9.2.3.24.1).
_GSM7_SINGLE, _GSM7_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67
_MAX_PARTS: Final = 255  # the UDH's total and sequence fields are one octet each

_GSM7_CHARS: Final = frozenset(GSM7_BASIC.replace("\x1b", "")) | frozenset(GSM7_EXTENSION)
# Unpacked GSM-7 is one octet per septet, so translating to code points below 0x80 and encoding
# as ASCII yields the payload in one C-level pass.
_TO_GSM7: Final[dict[int, str]] = {
    **{ord(char): chr(code) for code, char in enumerate(GSM7_BASIC) if code != _ESC},
    **{ord(char): chr(_ESC) + chr(code) for char, code in GSM7_EXTENSION.items()},
}
_FROM_EXTENSION: Final = {code: char for char, code in GSM7_EXTENSION.items()}


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text travels: its encoding, the number of SMS parts billed, and its length."""

    encoding: Encoding
    units: int  # SMS parts; what the carrier bills and what we charge
    length: int  # septets for GSM-7, UTF-16 code units for UCS-2


@dataclass(frozen=True, slots=True)
class EncodedMessage:
    """The short_message payloads of one text, ready for submit_sm."""

    data_coding: int
    esm_class: int
    parts: list[bytes]


def count_segments(text: str) -> Segmentation:
    """Encoding, billed parts and length of a text under the GSM 03.38 / UCS-2 rules."""
    encoding, payload = _encode(text)
    width = 1 if encoding == "GSM-7" else 2
    length = len(payload) // width
    return Segmentation(encoding, len(_part_bounds(payload, encoding)), length)


def encode_for_smpp(text: str, reference: int) -> EncodedMessage:
    """Payloads for submit_sm: unpacked GSM-7 or UTF-16BE, split with a UDH when it needs parts."""
    encoding, payload = _encode(text)
    data_coding = DATA_CODING_GSM7 if encoding == "GSM-7" else DATA_CODING_UCS2
    bounds = _part_bounds(payload, encoding)
    if len(bounds) == 1:
        return EncodedMessage(data_coding, 0x00, [payload])
    if len(bounds) > _MAX_PARTS:
        raise ValueError(f"text needs {len(bounds)} parts; a concatenated SMS allows {_MAX_PARTS}")
    # 8-bit concatenation IE (TS 23.040 §9.2.3.24.1): UDHL 05, IEI 00, IEDL 03, ref, total, seq.
    header = bytes((0x05, 0x00, 0x03, reference & 0xFF, len(bounds)))
    parts = [
        header + bytes((sequence,)) + payload[start:end]
        for sequence, (start, end) in enumerate(bounds, start=1)
    ]
    return EncodedMessage(data_coding, ESM_CLASS_UDHI, parts)


def decode_gsm7_unpacked(data: bytes) -> str:
    """Text of unpacked GSM-7 septets (one per octet), the inverse of the GSM-7 encoding."""
    chars: list[str] = []
    position = 0
    while position < len(data):
        septet = data[position]
        if septet > 0x7F:
            raise ValueError(f"octet 0x{septet:02X} at {position} is not a septet")
        if septet != _ESC:
            chars.append(GSM7_BASIC[septet])
            position += 1
            continue
        if position + 1 == len(data):
            raise ValueError("data ends with an escape and no extension code")
        code = data[position + 1]
        if code > 0x7F:
            raise ValueError(f"octet 0x{code:02X} at {position + 1} is not a septet")
        # TS 23.038 §6.2.1.1: ESC ESC is reserved and shown as a space; an unknown extension
        # code is shown as the default-alphabet character with that code.
        if code == _ESC:
            chars.append(" ")
        else:
            chars.append(_FROM_EXTENSION.get(code) or GSM7_BASIC[code])
        position += 2
    return "".join(chars)


def _encode(text: str) -> tuple[Encoding, bytes]:
    """The whole text as unpacked GSM-7 if every character is in the tables, else UTF-16BE."""
    if _GSM7_CHARS.issuperset(text):
        return "GSM-7", text.translate(_TO_GSM7).encode("ascii")
    # surrogatepass: a lone surrogate counts and travels as the one code unit it is.
    return "UCS-2", text.encode("utf-16-be", "surrogatepass")


def _part_bounds(payload: bytes, encoding: Encoding) -> list[tuple[int, int]]:
    """Octet ranges of each SMS part; ESC pairs and surrogate pairs never straddle two parts."""
    gsm = encoding == "GSM-7"
    single, per_part = (_GSM7_SINGLE, _GSM7_PART) if gsm else (2 * _UCS2_SINGLE, 2 * _UCS2_PART)
    if len(payload) <= single:
        return [(0, len(payload))]
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < len(payload):
        end = min(start + per_part, len(payload))
        if end < len(payload):
            # Extension codes and basic septets are never 0x1B, so a trailing 0x1B is always
            # the first half of a pair; likewise a trailing 0xD800-0xDBFF unit is a high surrogate.
            if gsm and payload[end - 1] == _ESC:
                end -= 1
            elif not gsm and 0xD8 <= payload[end - 2] <= 0xDB:
                end -= 2
        bounds.append((start, end))
        start = end
    return bounds
