"""Ugandan recipient numbers: every written form to E.164, the operator from our prefix table."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Final, Literal

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers.geocoder import country_name_for_number

Reason = Literal["malformed", "not_ugandan", "fixed_line", "unknown_range", "no_route"]

_COUNTRY_CODE: Final = "256"
_NSN_LENGTH: Final = 9
# Expanding every prefix to the longest one costs 10**(longest - shortest) entries per prefix;
# six digits keeps the worst case small while leaving room for sub-range carve-outs.
_MAX_PREFIX_LENGTH: Final = 6
_DEFAULT_TABLE: Final = Path(__file__).with_name("operator_prefixes.toml")

# Characters people put inside one number: spaces (including the no-break kinds that spreadsheets
# and phones insert), dashes, dots and the parentheses of "(0772)" or "256 (0) 772".
_SEPARATORS: Final = str.maketrans("", "", " \t\r\n\u00a0\u2009\u202f-\u2010\u2011\u2012\u2013.()")
_LIST_DELIMITERS: Final = re.compile(r"[,;\r\n]+")
# A piece of a recipient list that is one number once its spaces are gone: an optional "+"
# or an international prefix (00, 000), then at most 15 digits (the E.164 maximum).
_ONE_NUMBER: Final = re.compile(r"\+?[0-9]{1,15}|00{1,2}[0-9]{1,15}")

_NON_MOBILE_KINDS: Final = {
    PhoneNumberType.FIXED_LINE: "a fixed-line number",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.UAN: "a service number",
}


@dataclass(frozen=True, slots=True)
class Recipient:
    """A deliverable Ugandan mobile number and the operator that terminates it."""

    e164: str
    operator: str


@dataclass(frozen=True, slots=True)
class BadRecipient:
    """An input we cannot deliver to, with a stable reason code and a sentence for people."""

    input: str
    reason: Reason
    message: str


class PrefixTable:
    """Operator by national significant number prefix; the longest listed prefix wins."""

    __slots__ = ("_by_fixed_prefix", "_names", "_prefixes", "_width")

    def __init__(self, prefixes: Mapping[str, str], names: Mapping[str, str] | None = None) -> None:
        for prefix, operator in prefixes.items():
            if not (prefix.isascii() and prefix.isdigit()) or len(prefix) > _MAX_PREFIX_LENGTH:
                raise ValueError(f"prefix {prefix!r} must be 1 to {_MAX_PREFIX_LENGTH} digits")
            if not operator:
                raise ValueError(f"prefix {prefix!r} has no operator")
        self._prefixes = dict(prefixes)
        self._names = dict(names or {})
        self._width = max(map(len, prefixes), default=0)
        # Every prefix expanded to the longest length, shorter ones first so that longer
        # (more specific) prefixes overwrite them: a lookup is then one slice and one dict get.
        by_fixed_prefix: dict[str, str] = {}
        for prefix in sorted(prefixes, key=len):
            for tail in product("0123456789", repeat=self._width - len(prefix)):
                by_fixed_prefix[prefix + "".join(tail)] = prefixes[prefix]
        self._by_fixed_prefix = by_fixed_prefix

    @classmethod
    def load(cls, path: Path | None = None) -> PrefixTable:
        """Read a table from TOML; by default operator_prefixes.toml next to this module."""
        with (path or _DEFAULT_TABLE).open("rb") as file:
            return cls._from_document(tomllib.load(file))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str]) -> PrefixTable:
        """Build a table from prefix -> operator pairs."""
        return cls(mapping)

    @classmethod
    def _from_document(cls, document: dict[str, Any]) -> PrefixTable:
        prefixes: dict[str, str] = {}
        for operator, listed in document.get("operators", {}).items():
            if not isinstance(listed, list):
                raise TypeError(f"operators.{operator} must be a list of prefixes")
            for prefix in listed:
                if not isinstance(prefix, str):
                    raise TypeError(f"operators.{operator}: write prefix {prefix!r} as a string")
                # A prefix under two operators is a typo that would silently route one way.
                if prefix in prefixes:
                    raise ValueError(
                        f"prefix {prefix} is listed for {prefixes[prefix]} and {operator}"
                    )
                prefixes[prefix] = operator
        return cls(prefixes, document.get("names", {}))

    @property
    def operators(self) -> frozenset[str]:
        """Every operator named in the table."""
        return frozenset(self._prefixes.values())

    def display_name(self, operator: str) -> str:
        """The name to show people for an operator key."""
        return self._names.get(operator, operator)

    def operator_for(self, nsn: str) -> str | None:
        """The operator of a national significant number, or None if no prefix matches."""
        if len(nsn) >= self._width:
            return self._by_fixed_prefix.get(nsn[: self._width])
        for length in range(len(nsn), 0, -1):
            operator = self._prefixes.get(nsn[:length])
            if operator is not None:
                return operator
        return None


def split_recipients(value: str | list[str]) -> list[str]:
    """Split the API's recipient field (a string, an array, or a delimited list) into numbers."""
    if isinstance(value, list):
        return [stripped for item in value if (stripped := item.strip())]
    numbers: list[str] = []
    for piece in _LIST_DELIMITERS.split(value):
        piece = piece.strip()
        if not piece:
            continue
        # "+256 772 123 456" is one number; "0772123456 0701234567" is two.
        if _ONE_NUMBER.fullmatch(piece.translate(_SEPARATORS)):
            numbers.append(piece)
        else:
            numbers.extend(piece.split())
    return numbers


def parse_recipients(
    values: Iterable[str], table: PrefixTable, routable: frozenset[str]
) -> tuple[list[Recipient], list[BadRecipient]]:
    """Normalise many numbers: good ones deduplicated in first-seen order, and every bad one."""
    good: dict[str, Recipient] = {}
    bad: dict[str, BadRecipient] = {}
    for raw in values:
        result = normalise(raw, table, routable)
        if isinstance(result, Recipient):
            good.setdefault(result.e164, result)
        else:
            bad.setdefault(raw, result)
    return list(good.values()), list(bad.values())


def normalise(raw: str, table: PrefixTable, routable: frozenset[str]) -> Recipient | BadRecipient:
    """One number in any written Ugandan form to a Recipient, or the reason it is unusable."""
    cleaned = raw.translate(_SEPARATORS)
    nsn = _ugandan_nsn(cleaned)
    # Fast path: decided by our own table alone. phonenumbers is only asked to explain failures,
    # and it would be wrong here anyway wherever its data lags UCC assignments.
    if nsn is not None and len(nsn) == _NSN_LENGTH and nsn[0] == "7":
        operator = table.operator_for(nsn)
        if operator is None:
            return BadRecipient(
                raw, "unknown_range", "No Ugandan operator has been assigned this number's range."
            )
        if operator not in routable:
            name = table.display_name(operator)
            return BadRecipient(raw, "no_route", f"We cannot deliver to {name} numbers.")
        return Recipient("+256" + nsn, operator)
    return _diagnose(raw, cleaned, nsn)


def _ugandan_nsn(cleaned: str) -> str | None:
    """The national significant number if the digits are written as a Ugandan number."""
    plus = cleaned.startswith("+")
    digits = cleaned[1:] if plus else cleaned
    if not (digits.isascii() and digits.isdigit()):
        return None
    if plus:
        international = digits
    elif digits.startswith("000"):
        # Uganda's own international prefix (protocols §2.1).
        international = digits[3:]
    elif digits.startswith("00"):
        # The European habit; phonenumbers misreads "00256…" because UG dials 000 abroad.
        international = digits[2:]
    elif digits.startswith(_COUNTRY_CODE) and len(digits) > _NSN_LENGTH:
        international = digits
    elif digits.startswith("0"):
        return digits[1:]
    else:
        return digits
    if not international.startswith(_COUNTRY_CODE):
        return None
    nsn = international[3:]
    # "+256 (0)772 123456" and "+2560772123456": the trunk 0 kept after the country code.
    return nsn.removeprefix("0")


def _diagnose(raw: str, cleaned: str, nsn: str | None) -> BadRecipient:
    """Why a number that missed the fast path cannot be delivered to."""
    digits = cleaned.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return BadRecipient(raw, "malformed", "This is not a phone number.")
    if nsn is not None and len(nsn) == _NSN_LENGTH:
        number = phonenumbers.parse("+" + _COUNTRY_CODE + nsn)
        if phonenumbers.is_valid_number(number):
            kind = _NON_MOBILE_KINDS.get(
                phonenumbers.number_type(number), "a number that is not a mobile"
            )
            return BadRecipient(
                raw, "fixed_line", f"This is {kind} in Uganda; it cannot receive SMS."
            )
    country = _foreign_country(cleaned, digits)
    if country is not None:
        return BadRecipient(
            raw, "not_ugandan", f"This is a number in {country}; we deliver only to Uganda."
        )
    if nsn is not None and nsn.startswith("7"):
        return BadRecipient(
            raw,
            "malformed",
            f"A Ugandan mobile number has 9 digits after the 0 or +256; this has {len(nsn)}.",
        )
    return BadRecipient(raw, "malformed", "This is not a valid Ugandan mobile number.")


def _foreign_country(cleaned: str, digits: str) -> str | None:
    """The country of a valid non-Ugandan number written internationally, else None."""
    if cleaned.startswith("+"):
        international = digits
    elif digits.startswith("000"):
        international = digits[3:]
    elif digits.startswith("00"):
        international = digits[2:]
    elif not digits.startswith("0") and len(digits) > 10:
        # Too long for a Ugandan national number, so perhaps a country code without its "+".
        international = digits
    else:
        return None
    try:
        number = phonenumbers.parse("+" + international)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    if region in (None, "UG") or not phonenumbers.is_valid_number(number):
        return None
    return country_name_for_number(number, "en") or region
