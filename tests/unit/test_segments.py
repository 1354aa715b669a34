"""Segment counting and SMPP encoding of message text."""

from __future__ import annotations

import random

import gsm0338  # noqa: F401  (registers the independent 'gsm03.38' codec)
import pytest

from libs.common.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    EncodedMessage,
    Segmentation,
    count_segments,
    decode_gsm7_unpacked,
    encode_for_smpp,
)

BASIC = GSM7_BASIC.replace("\x1b", "")
EXTENSION = "".join(GSM7_EXTENSION)
NON_GSM = "`çáíóú’“”–…ªжξ\x1b"
EMOJI = "😀🇺🇬👍🏾"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, Segmentation("GSM-7", 1, 160)),
        ("a" * 161, Segmentation("GSM-7", 2, 161)),
        ("a" * 306, Segmentation("GSM-7", 2, 306)),
        ("a" * 307, Segmentation("GSM-7", 3, 307)),
        ("a" * 152 + "€" + "a" * 152, Segmentation("GSM-7", 3, 306)),
        ("a" * 66 + "😀" + "a" * 66, Segmentation("UCS-2", 3, 134)),
        ("😀" * 35, Segmentation("UCS-2", 1, 70)),
        ("😀" * 36, Segmentation("UCS-2", 2, 72)),
        ("€" * 80, Segmentation("GSM-7", 1, 160)),
        ("ж" * 70, Segmentation("UCS-2", 1, 70)),
        ("ж" * 71, Segmentation("UCS-2", 2, 71)),
        ("ж" * 134, Segmentation("UCS-2", 2, 134)),
        ("ж" * 135, Segmentation("UCS-2", 3, 135)),
        ("`", Segmentation("UCS-2", 1, 1)),
        ("ç", Segmentation("UCS-2", 1, 1)),
        ("Ç", Segmentation("GSM-7", 1, 1)),
        ("\f", Segmentation("GSM-7", 1, 2)),
        ("a" * 1600, Segmentation("GSM-7", 11, 1600)),
        ("ж" * 1600, Segmentation("UCS-2", 24, 1600)),
        ("", Segmentation("GSM-7", 1, 0)),
    ],
)
def test_reference_vectors(text: str, expected: Segmentation) -> None:
    assert count_segments(text) == expected


def test_a_literal_escape_character_forces_ucs2() -> None:
    assert count_segments("a\x1bb").encoding == "UCS-2"


def test_every_table_character_is_gsm7() -> None:
    assert count_segments(BASIC + EXTENSION) == Segmentation("GSM-7", 1, 127 + 2 * 10)


def test_single_gsm7_part_is_unpacked_septets() -> None:
    assert encode_for_smpp("Hello @ 5€", reference=1) == EncodedMessage(
        0x00, 0x00, [b"Hello \x00 5\x1be"]
    )


def test_single_ucs2_part_is_utf16be() -> None:
    assert encode_for_smpp("Salaam ж 😀", reference=1) == EncodedMessage(
        0x08, 0x00, ["Salaam ж 😀".encode("utf-16-be")]
    )


def test_multipart_carries_a_concatenation_udh() -> None:
    encoded = encode_for_smpp("a" * 400, reference=0x1234)
    assert (encoded.data_coding, encoded.esm_class) == (0x00, 0x40)
    assert [part[:6] for part in encoded.parts] == [
        bytes((0x05, 0x00, 0x03, 0x34, 3, sequence)) for sequence in (1, 2, 3)
    ]
    assert [len(part) - 6 for part in encoded.parts] == [153, 153, 94]


def test_escape_pair_is_never_split() -> None:
    encoded = encode_for_smpp("a" * 152 + "€" + "a" * 152, reference=9)
    assert len(encoded.parts) == 3
    assert encoded.parts[0][6:] == b"a" * 152
    assert encoded.parts[1][6:8] == b"\x1be"


def test_surrogate_pair_is_never_split() -> None:
    encoded = encode_for_smpp("a" * 66 + "😀" + "a" * 66, reference=9)
    assert encoded.data_coding == 0x08
    assert len(encoded.parts) == 3
    assert encoded.parts[0][6:] == ("a" * 66).encode("utf-16-be")
    assert encoded.parts[1][6:8] == b"\xd8\x3d"


def test_1600_characters_fit_in_eleven_parts() -> None:
    encoded = encode_for_smpp("a" * 1600, reference=200)
    assert len(encoded.parts) == 11
    assert all(len(part) <= 6 + 153 for part in encoded.parts)
    assert decode_gsm7_unpacked(b"".join(part[6:] for part in encoded.parts)) == "a" * 1600


def test_more_parts_than_a_udh_can_number_is_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        encode_for_smpp("a" * (153 * 255 + 1), reference=1)


def test_gsm7_bytes_match_the_independent_codec() -> None:
    rng = random.Random(338)
    samples = [BASIC, EXTENSION, *(_random_text(rng, BASIC + EXTENSION) for _ in range(500))]
    for text in samples:
        encoded = encode_for_smpp(text, reference=1)
        assert encoded.data_coding == 0x00
        assert _payload(encoded) == text.encode("gsm03.38")


def test_we_and_the_independent_codec_agree_on_which_characters_are_gsm7() -> None:
    # Below U+3000 covers every Latin, Greek and Cyrillic look-alike and the euro sign.
    for char in map(chr, range(0x3000)):
        if char == "\x1b" or "\ud800" <= char <= "\udfff":
            continue  # the codec passes a literal ESC through; we never send one
        try:
            char.encode("gsm03.38")
        except UnicodeEncodeError:
            assert count_segments(char).encoding == "UCS-2", repr(char)
        else:
            assert count_segments(char).encoding == "GSM-7", repr(char)


def test_random_texts_split_exactly_as_counted() -> None:
    rng = random.Random(2026)
    pools = [BASIC, BASIC + EXTENSION, BASIC + EXTENSION + NON_GSM, BASIC + EMOJI, EMOJI + "ж"]
    for _ in range(3000):
        text = _random_text(rng, rng.choice(pools), rng.randint(0, 700))
        segmentation = count_segments(text)
        encoded = encode_for_smpp(text, reference=rng.randint(0, 0xFFFF))
        assert len(encoded.parts) == segmentation.units
        _assert_parts_are_well_formed(text, segmentation, encoded)


def _assert_parts_are_well_formed(
    text: str, segmentation: Segmentation, encoded: EncodedMessage
) -> None:
    multipart = len(encoded.parts) > 1
    bodies = [part[6:] if multipart else part for part in encoded.parts]
    if segmentation.encoding == "GSM-7":
        assert encoded.data_coding == 0x00
        assert decode_gsm7_unpacked(b"".join(bodies)) == text
        assert sum(map(len, bodies)) == segmentation.length
        limit = 153 if multipart else 160
        assert all(len(body) <= limit and not body.endswith(b"\x1b") for body in bodies)
    else:
        assert encoded.data_coding == 0x08
        assert b"".join(bodies).decode("utf-16-be") == text
        assert sum(map(len, bodies)) == 2 * segmentation.length
        limit = 134 if multipart else 140
        assert all(len(body) <= limit for body in bodies)
        # Each part decodes on its own, so no surrogate pair was cut.
        assert "".join(body.decode("utf-16-be") for body in bodies) == text
    assert encoded.esm_class == (0x40 if multipart else 0x00)


def test_decode_handles_reserved_and_unknown_escapes() -> None:
    assert decode_gsm7_unpacked(b"a\x1b\x1bb") == "a b"
    assert decode_gsm7_unpacked(b"\x1bA") == "A"
    assert decode_gsm7_unpacked(b"\x00\x09\x1b\x65") == "@Ç€"


@pytest.mark.parametrize("data", [b"\x80", b"a\x1b", b"\x1b\xff"])
def test_decode_refuses_octets_that_are_not_septets(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_gsm7_unpacked(data)


def test_a_lone_surrogate_counts_as_one_unit() -> None:
    assert count_segments("a\ud83d") == Segmentation("UCS-2", 1, 2)
    assert encode_for_smpp("a\ud83d", reference=1).parts == [b"\x00a\xd8\x3d"]


def _payload(encoded: EncodedMessage) -> bytes:
    if len(encoded.parts) == 1:
        return encoded.parts[0]
    return b"".join(part[6:] for part in encoded.parts)


def _random_text(rng: random.Random, alphabet: str, length: int | None = None) -> str:
    size = rng.randint(0, 400) if length is None else length
    return "".join(rng.choice(alphabet) for _ in range(size))
