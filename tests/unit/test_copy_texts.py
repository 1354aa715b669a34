"""Values written in COPY's text format: escaped only when one needs it."""

from __future__ import annotations

from libs.common.admission.writes import copy_texts


def test_plain_values_are_written_as_they_are() -> None:
    values = ["msg_01a2", "+256772123456", "mtn"]
    assert copy_texts(values) is values


def test_backslashes_tabs_and_line_ends_are_escaped() -> None:
    assert copy_texts(["a\\b", "c\td", "e\nf", "g\rh", "plain"]) == [
        "a\\\\b",
        "c\\td",
        "e\\nf",
        "g\\rh",
        "plain",
    ]
