"""Recipient normalisation, operator lookup and recipient-list splitting."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
import pytest

from libs.common.phones import (
    BadRecipient,
    PrefixTable,
    Recipient,
    normalise,
    parse_recipients,
    split_recipients,
)

ROUTABLE = frozenset({"mtn", "airtel"})


@pytest.fixture(scope="module")
def table() -> PrefixTable:
    return PrefixTable.load()


@pytest.mark.parametrize(
    "raw",
    [
        "+256772123456",
        "256772123456",
        "0772123456",
        "772123456",
        "+256 772 123 456",
        "0772-123-456",
        "0772.123.456",
        "(0772) 123456",
        "256 (0) 772 123456",
        "+256 (0)772 123456",
        "+2560772123456",
        "00256772123456",
        "000256772123456",
        " 0772 123 456 ",
        "0772\u00a0123\u00a0456",
    ],
)
def test_every_documented_form_normalises_to_e164(table: PrefixTable, raw: str) -> None:
    assert normalise(raw, table, ROUTABLE) == Recipient("+256772123456", "mtn")


@pytest.mark.parametrize(
    ("raw", "operator"),
    [
        ("0701234567", "airtel"),
        ("0747123456", "airtel"),
        ("0752123456", "airtel"),
        ("0730123456", "airtel"),
        ("0762123456", "mtn"),
        ("0782123456", "mtn"),
        ("0794123456", "mtn"),
        ("0737123456", "mtn"),
        ("0724123456", "mtn"),
    ],
)
def test_operator_comes_from_the_prefix_table(table: PrefixTable, raw: str, operator: str) -> None:
    result = normalise(raw, table, ROUTABLE)
    assert isinstance(result, Recipient)
    assert result.operator == operator


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+254712345678", "not_ugandan"),
        ("00254712345678", "not_ugandan"),
        ("254712345678", "not_ugandan"),
        ("+44 7911 123456", "not_ugandan"),
        ("0392123456", "fixed_line"),
        ("0414123456", "fixed_line"),
        ("0200123456", "fixed_line"),
        ("+256 312 123456", "fixed_line"),
        ("0800123456", "fixed_line"),
        ("0722123456", "unknown_range"),
        ("0733123456", "unknown_range"),
        ("0796123456", "unknown_range"),
        ("0797123456", "unknown_range"),
        ("0798123456", "unknown_range"),
        ("0799123456", "unknown_range"),
        ("0728112345", "unknown_range"),
        ("0712345678", "no_route"),
        ("0726123456", "no_route"),
        ("0736123456", "no_route"),
        ("abc", "malformed"),
        ("", "malformed"),
        ("+", "malformed"),
        ("0772123", "malformed"),
        ("07721234567", "malformed"),
        ("+256", "malformed"),
        ("0772abc456", "malformed"),
        ("0123456789", "malformed"),
        ("+2547", "malformed"),
    ],
)
def test_bad_numbers_carry_a_stable_reason(table: PrefixTable, raw: str, reason: str) -> None:
    result = normalise(raw, table, ROUTABLE)
    assert isinstance(result, BadRecipient)
    assert (result.input, result.reason) == (raw, reason)
    assert result.message.endswith(".")


def test_messages_name_the_problem(table: PrefixTable) -> None:
    assert "Kenya" in _bad(table, "+254712345678").message
    assert "fixed-line" in _bad(table, "0392123456").message
    assert "Uganda Telecom" in _bad(table, "0712345678").message
    assert "9 digits" in _bad(table, "0772123").message


def test_an_operator_becomes_deliverable_once_routable(table: PrefixTable) -> None:
    routable = ROUTABLE | {"utl"}
    assert normalise("0712345678", table, routable) == Recipient("+256712345678", "utl")


def test_valid_mobile_numbers_never_reach_phonenumbers(
    table: PrefixTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers called on the fast path")

    monkeypatch.setattr(phonenumbers, "parse", refuse)
    monkeypatch.setattr(phonenumbers, "is_valid_number", refuse)
    for raw in ("+256 772 123 456", "0701234567", "00256752123456", "0722123456", "0712345678"):
        normalise(raw, table, ROUTABLE)


def test_parse_recipients_deduplicates_in_first_seen_order(table: PrefixTable) -> None:
    good, bad = parse_recipients(
        ["0701234567", "+256772123456", "0772 123 456", "256701234567", "0752123456"],
        table,
        ROUTABLE,
    )
    assert [r.e164 for r in good] == ["+256701234567", "+256772123456", "+256752123456"]
    assert bad == []


def test_parse_recipients_reports_every_bad_number(table: PrefixTable) -> None:
    good, bad = parse_recipients(
        ["abc", "0772123456", "0392123456", "abc", "0722123456", "+254712345678"],
        table,
        ROUTABLE,
    )
    assert [r.e164 for r in good] == ["+256772123456"]
    assert [(b.input, b.reason) for b in bad] == [
        ("abc", "malformed"),
        ("0392123456", "fixed_line"),
        ("0722123456", "unknown_range"),
        ("+254712345678", "not_ugandan"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0772123456", ["0772123456"]),
        ("+256 772 123 456", ["+256 772 123 456"]),
        ("0772123456,0701234567", ["0772123456", "0701234567"]),
        ("0772123456, 0701234567", ["0772123456", "0701234567"]),
        ("0772123456;0701234567", ["0772123456", "0701234567"]),
        ("0772123456\n0701234567\r\n", ["0772123456", "0701234567"]),
        ("0772123456 0701234567", ["0772123456", "0701234567"]),
        ("0772123456\t0701234567", ["0772123456", "0701234567"]),
        ("+256772123456 +256701234567", ["+256772123456", "+256701234567"]),
        ("772123456 701234567", ["772123456", "701234567"]),
        (
            "+256 772 123 456, 0701-234-567; (0752) 123456",
            ["+256 772 123 456", "0701-234-567", "(0752) 123456"],
        ),
        ("256 (0) 772 123456", ["256 (0) 772 123456"]),
        ("000256 772 123 456", ["000256 772 123 456"]),
        ("abc def", ["abc", "def"]),
        (",, ;\n", []),
        ("", []),
        ([" 0772123456 ", "", "  ", "+256 701 234 567"], ["0772123456", "+256 701 234 567"]),
        (["0772123456,0701234567"], ["0772123456,0701234567"]),
        ([], []),
    ],
)
def test_split_recipients(value: str | list[str], expected: list[str]) -> None:
    assert split_recipients(value) == expected


def test_longest_prefix_wins() -> None:
    table = PrefixTable.from_mapping({"7": "wide", "72": "narrow", "724": "mtn", "7240": "ham"})
    assert table.operator_for("701234567") == "wide"
    assert table.operator_for("721234567") == "narrow"
    assert table.operator_for("724123456") == "mtn"
    assert table.operator_for("724012345") == "ham"
    assert table.operator_for("601234567") is None


def test_lookup_of_a_number_shorter_than_the_longest_prefix() -> None:
    table = PrefixTable.from_mapping({"77": "mtn", "7240": "ham"})
    assert table.operator_for("77") == "mtn"
    assert table.operator_for("724") is None
    assert table.operator_for("") is None


def test_packaged_table_resolves_nested_ranges(table: PrefixTable) -> None:
    assert table.operator_for("724012345") == "hamilton"
    assert table.operator_for("724112345") == "mtn"
    assert table.operator_for("721012345") == "savanna"
    assert table.operator_for("721112345") == "lycamobile"
    assert table.operator_for("728012345") == "talkio"
    assert table.operator_for("734012345") == "roke"
    assert table.operator_for("720123456") == "smile"
    assert table.operator_for("796123456") is None
    assert table.operator_for("798123456") is None
    assert {"mtn", "airtel", "utl", "lycamobile"} <= table.operators


def test_load_a_custom_table(tmp_path: Path) -> None:
    path = tmp_path / "prefixes.toml"
    path.write_text(
        '# a new range\n[operators]\nairtel = ["70", "722"]\n[names]\nairtel = "Airtel"\n',
        encoding="utf-8",
    )
    table = PrefixTable.load(path)
    assert normalise("0722123456", table, ROUTABLE) == Recipient("+256722123456", "airtel")
    assert _bad(table, "0772123456").reason == "unknown_range"
    assert table.display_name("airtel") == "Airtel"
    assert table.display_name("mtn") == "mtn"


def test_a_prefix_listed_for_two_operators_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prefixes.toml"
    path.write_text('[operators]\nmtn = ["77"]\nairtel = ["77"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="77"):
        PrefixTable.load(path)


@pytest.mark.parametrize("prefix", ["", "7a", "+77", "7777777"])
def test_prefixes_must_be_short_digit_strings(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        PrefixTable.from_mapping({prefix: "mtn"})


def _bad(table: PrefixTable, raw: str) -> BadRecipient:
    result = normalise(raw, table, ROUTABLE)
    assert isinstance(result, BadRecipient)
    return result
