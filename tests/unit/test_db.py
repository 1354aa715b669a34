"""libs.common.db's asyncpg helpers: named parameters numbered, command statuses read."""

from __future__ import annotations

from libs.common.db import positional, rows_affected


def test_names_are_numbered_in_order_of_first_use_and_reused() -> None:
    sql, names = positional("SELECT :b, :a FROM t WHERE x = :b AND y = ANY(:a_list)")
    assert sql == "SELECT $1, $2 FROM t WHERE x = $1 AND y = ANY($3)"
    assert names == ("b", "a", "a_list")


def test_casts_times_and_quoted_colons_are_left_alone() -> None:
    sql, names = positional("SELECT x::int, '12:30', CAST(:lease AS interval), y::text[]")
    assert sql == "SELECT x::int, '12:30', CAST($1 AS interval), y::text[]"
    assert names == ("lease",)


def test_a_statement_without_parameters_is_unchanged() -> None:
    assert positional("SELECT 1") == ("SELECT 1", ())


def test_rows_affected_reads_the_count_of_any_command_status() -> None:
    assert rows_affected("DELETE 3") == 3
    assert rows_affected("INSERT 0 5") == 5
    assert rows_affected("UPDATE 0") == 0
