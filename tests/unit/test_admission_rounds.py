"""The gateway's admission rounds: at most one round in flight per wallet, so a wallet's
requests gather for its next round while a free slot serves the other wallets."""

from __future__ import annotations

import asyncio

from libs.common.admission import Admission, AdmitResult
from services.api_gateway.admissions import WalletRounds


class _HeldRounds:
    """Each round waits until the test answers it, as the wallet's transaction would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Admission], asyncio.Future[list[AdmitResult]]]] = []

    async def run(self, wallet_id: str, admissions: list[Admission]) -> list[AdmitResult]:
        future: asyncio.Future[list[AdmitResult]] = asyncio.get_running_loop().create_future()
        self.calls.append((wallet_id, admissions, future))
        return await future

    def wallet(self, n: int) -> str:
        return self.calls[n][0]

    def batch_ids(self, n: int) -> list[str]:
        return [a.batch_id for a in self.calls[n][1]]

    def answer(self, n: int) -> None:
        _, admissions, future = self.calls[n]
        future.set_result([AdmitResult(batch_id=a.batch_id, ok=True) for a in admissions])

    def fail(self, n: int, error: Exception) -> None:
        self.calls[n][2].set_exception(error)


def _admission(wallet_id: str, n: int) -> Admission:
    return Admission(
        batch_id=f"bat_{wallet_id}_{n}",
        wallet_id=wallet_id,
        message="hi",
        encoding="gsm7",
        units=1,
        recipients=["+256772123456"],
        carriers=["mtn"],
    )


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_wallet_waits_for_its_round_while_others_take_the_free_slot() -> None:
    held = _HeldRounds()
    rounds = WalletRounds(held.run, concurrency=2, round_max=64)
    a1 = asyncio.create_task(rounds.admit(_admission("wal_a", 1)))
    await _settle()
    assert [held.wallet(0)] == ["wal_a"]

    # A slot is free, but wal_a's next requests wait for its round instead of queueing
    # behind its row lock in a second one.
    later_a = [asyncio.create_task(rounds.admit(_admission("wal_a", n))) for n in (2, 3)]
    await _settle()
    assert len(held.calls) == 1

    # Another wallet takes the free slot at once.
    b1 = asyncio.create_task(rounds.admit(_admission("wal_b", 1)))
    await _settle()
    assert held.wallet(1) == "wal_b"
    held.answer(1)
    assert (await b1).batch_id == "bat_wal_b_1"
    assert not a1.done()

    # wal_a's round ends: its gathered requests ride the next one together, in order.
    held.answer(0)
    assert (await a1).batch_id == "bat_wal_a_1"
    await _settle()
    assert held.batch_ids(2) == ["bat_wal_a_2", "bat_wal_a_3"]
    held.answer(2)
    assert [r.batch_id for r in await asyncio.gather(*later_a)] == ["bat_wal_a_2", "bat_wal_a_3"]
    assert rounds.dispatched == 3


async def test_with_every_slot_taken_wallets_go_in_the_order_they_became_ready() -> None:
    held = _HeldRounds()
    rounds = WalletRounds(held.run, concurrency=2, round_max=2)
    busy = [asyncio.create_task(rounds.admit(_admission(w, 0))) for w in ("wal_x", "wal_y")]
    await _settle()
    assert len(held.calls) == 2  # both slots taken
    tasks = [asyncio.create_task(rounds.admit(_admission("wal_a", n))) for n in (1, 2, 3)]
    tasks.append(asyncio.create_task(rounds.admit(_admission("wal_c", 1))))
    await _settle()

    # A slot frees: wal_a, ready first, goes with a full round of its first two requests.
    held.answer(0)
    await _settle()
    assert held.batch_ids(2) == ["bat_wal_a_1", "bat_wal_a_2"]
    # The other frees: wal_a's third waits for wal_a's round, wal_c goes now.
    held.answer(1)
    await _settle()
    assert held.batch_ids(3) == ["bat_wal_c_1"]
    held.answer(3)
    held.answer(2)
    await _settle()
    assert held.batch_ids(4) == ["bat_wal_a_3"]
    held.answer(4)
    results = await asyncio.gather(*busy, *tasks)
    assert [r.batch_id for r in results[2:]] == [
        "bat_wal_a_1",
        "bat_wal_a_2",
        "bat_wal_a_3",
        "bat_wal_c_1",
    ]


async def test_a_flood_from_one_wallet_leaves_in_order_in_full_rounds() -> None:
    held = _HeldRounds()
    rounds = WalletRounds(held.run, concurrency=2, round_max=64)
    flood = [asyncio.create_task(rounds.admit(_admission("wal_a", n))) for n in range(1_000)]
    await _settle()
    assert [len(admissions) for _, admissions, _ in held.calls] == [1]
    other = asyncio.create_task(rounds.admit(_admission("wal_b", 0)))
    await _settle()
    assert held.wallet(1) == "wal_b"  # the free slot, past the 999 waiting behind wal_a
    held.answer(1)
    await other

    # Each of wal_a's rounds, once answered, lets the next one leave.
    n = 0
    while n < len(held.calls):
        if n != 1:
            held.answer(n)
        n += 1
        await _settle()
    sizes = [len(admissions) for wallet, admissions, _ in held.calls if wallet == "wal_a"]
    assert sizes == [1] + [64] * 15 + [39]
    results = await asyncio.gather(*flood)
    assert [r.batch_id for r in results] == [f"bat_wal_a_{n}" for n in range(1_000)]


async def test_a_failed_round_fails_its_requests_and_the_wallet_goes_on() -> None:
    held = _HeldRounds()
    rounds = WalletRounds(held.run, concurrency=1, round_max=64)
    first = asyncio.create_task(rounds.admit(_admission("wal_a", 1)))
    await _settle()
    second = asyncio.create_task(rounds.admit(_admission("wal_a", 2)))
    await _settle()
    held.fail(0, RuntimeError("database gone"))
    await _settle()
    assert isinstance(first.exception(), RuntimeError)
    # The slot and the wallet were given back: its next request has a round of its own.
    assert held.batch_ids(1) == ["bat_wal_a_2"]
    held.answer(1)
    assert (await second).ok
