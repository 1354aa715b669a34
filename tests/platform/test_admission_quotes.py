"""A wallet admitted in full before is admitted in one statement at its last price; the
statement itself checks that price and the balance, and refuses rather than guess."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from libs.common.admission import Admission, AdmitResult, charge
from libs.common.admission.charge import Quotes, admit_and_publish
from libs.common.admission.settings import AdmissionSettings
from libs.common.amqp import Topology
from libs.common.ids import new_id
from libs.common.pricing import UNITS_UNBOUNDED, Quote
from tests.platform.conftest import Platform

SETTINGS = AdmissionSettings(volume_tier_units=1_000, price_per_unit=35, volume_tier_price=32)


class Statements:
    """What each one-statement admission returned: its results, or None when refused."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.outcomes: list[list[AdmitResult] | None] = []
        at_quote = charge._admit_at_quote

        async def recorded(*args: Any) -> list[AdmitResult] | None:
            outcome = await at_quote(*args)
            self.outcomes.append(outcome)
            return outcome

        monkeypatch.setattr(charge, "_admit_at_quote", recorded)


def _sends(wallet_id: str, *recipient_counts: int) -> list[Admission]:
    return [
        Admission(
            batch_id=new_id("bat"),
            wallet_id=wallet_id,
            message="Your code is 123456",
            encoding="GSM-7",
            units=1,
            recipients=[f"+2567724{n:05d}" for n in range(count)],
            carriers=["mtn"] * count,
        )
        for count in recipient_counts
    ]


async def _admit(platform: Platform, wallet_id: str, quotes: Quotes, *counts: int) -> list[Any]:
    return await admit_and_publish(
        platform.sessions,
        [],  # billing's relays publish the staged jobs
        SETTINGS,
        Topology(platform.config.amqp_namespace),
        wallet_id,
        _sends(wallet_id, *counts),
        quotes=quotes,
    )


async def _charges(platform: Platform, wallet_id: str) -> list[tuple[int, int]]:
    rows = await platform.rows(
        "SELECT amount, balance_after FROM ledger_entries"
        " WHERE wallet_id = :w AND kind = 'charge' ORDER BY id",
        w=wallet_id,
    )
    return [(amount, after) for amount, after in rows]


async def _messages(platform: Platform, wallet_id: str) -> int:
    count: int = await platform.scalar(
        "SELECT count(*) FROM messages WHERE wallet_id = :w", w=wallet_id
    )
    return count


async def test_a_quoted_wallet_is_admitted_in_one_statement(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await platform.customer(credit=10_000)
    wallet_id, quotes, statements = customer.wallet_id, Quotes(), Statements(monkeypatch)

    first = await _admit(platform, wallet_id, quotes, 1)
    assert statements.outcomes == []  # no quote yet: the locked round decides
    assert quotes.get(wallet_id) == Quote(35, None, 0, 999)
    assert [(r.ok, r.balance) for r in first] == [(True, 9_965)]

    results = await _admit(platform, wallet_id, quotes, 1, 3, 2)
    assert statements.outcomes == [results]
    assert [(r.ok, r.cost, r.unit_price, r.balance) for r in results] == [
        (True, 35, 35, 9_930),
        (True, 105, 35, 9_825),
        (True, 70, 35, 9_755),
    ]
    assert [len(r.message_ids) for r in results] == [1, 3, 2]
    assert await customer.balance() == 9_755
    assert await _charges(platform, wallet_id) == [
        (-35, 9_965),
        (-35, 9_930),
        (-105, 9_825),
        (-70, 9_755),
    ]
    assert (
        await platform.scalar("SELECT count(*) FROM messages WHERE wallet_id = :w", w=wallet_id)
        == 7
    )
    assert await platform.ledger_mismatches() == []


async def test_a_changed_price_refuses_the_statement_and_the_locked_round_charges_it(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await platform.customer(credit=10_000)
    wallet_id, quotes, statements = customer.wallet_id, Quotes(), Statements(monkeypatch)
    await _admit(platform, wallet_id, quotes, 1)

    await platform.cli("admin", "set-price", "--wallet", wallet_id, "--price", "30")
    [negotiated] = await _admit(platform, wallet_id, quotes, 2)
    assert statements.outcomes == [None]
    assert (negotiated.ok, negotiated.cost, negotiated.balance) == (True, 60, 9_905)
    assert quotes.get(wallet_id) == Quote(30, 30, 0, UNITS_UNBOUNDED)

    await platform.cli("admin", "set-price", "--wallet", wallet_id, "--clear")
    [public] = await _admit(platform, wallet_id, quotes, 1)
    assert statements.outcomes == [None, None]
    assert (public.cost, quotes.get(wallet_id)) == (35, Quote(35, None, 0, 999))

    # Past the volume tier since the last quote: the price's band no longer holds.
    await platform.rows(
        "UPDATE wallet_usage_daily SET units = 1000 WHERE wallet_id = :w RETURNING units",
        w=wallet_id,
    )
    [tiered] = await _admit(platform, wallet_id, quotes, 1)
    assert statements.outcomes == [None, None, None]
    assert (tiered.cost, tiered.unit_price) == (32, 32)
    assert quotes.get(wallet_id) == Quote(32, None, 1_000, UNITS_UNBOUNDED)
    assert await customer.balance() == 10_000 - 35 - 60 - 35 - 32
    assert await platform.ledger_mismatches() == []


async def test_a_balance_short_of_the_total_admits_request_by_request(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await platform.customer(credit=35 * 5)
    wallet_id, quotes, statements = customer.wallet_id, Quotes(), Statements(monkeypatch)
    await _admit(platform, wallet_id, quotes, 1)

    results = await _admit(platform, wallet_id, quotes, 3, 2, 1)
    assert statements.outcomes == [None]  # 210 asked of 140: the statement wrote nothing
    assert [(r.ok, r.error, r.balance) for r in results] == [
        (True, None, 35),
        (False, "insufficient_balance", 35),
        (True, None, 0),
    ]
    assert quotes.get(wallet_id) is None  # a refusal: the next round takes the lock again
    assert await customer.balance() == 0
    assert await _charges(platform, wallet_id) == [(-35, 140), (-105, 35), (-35, 0)]
    assert (
        await platform.scalar("SELECT count(*) FROM messages WHERE wallet_id = :w", w=wallet_id)
        == 5
    )
    assert await platform.ledger_mismatches() == []


async def test_units_admitted_while_waiting_for_the_lock_set_the_price(
    platform: Platform,
) -> None:
    """The admission ahead of this one in the wallet's lock takes it past the volume tier:
    this one pays the tier price, however its transaction started."""
    customer = await platform.customer(credit=10_000)
    wallet_id = customer.wallet_id
    await _admit(platform, wallet_id, Quotes(), 1)
    async with platform.sessions() as session, session.begin():
        await session.execute(
            text("SELECT 1 FROM wallets WHERE id = :w FOR UPDATE"), {"w": wallet_id}
        )
        waiting = asyncio.create_task(_admit(platform, wallet_id, Quotes(), 1))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await session.execute(
            text("UPDATE wallet_usage_daily SET units = 1000 WHERE wallet_id = :w"),
            {"w": wallet_id},
        )
    [result] = await waiting
    assert (result.ok, result.cost, result.unit_price) == (True, 32, 32)
    assert await customer.balance() == 10_000 - 35 - 32
    assert await platform.ledger_mismatches() == []
