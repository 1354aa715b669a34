"""The gateway's admission batching: at most one RPC in flight per wallet, so a wallet's
requests gather for its next RPC while a free slot serves the other wallets."""

from __future__ import annotations

import asyncio

from libs.common.admission import Admission, AdmitReply, AdmitRequest, AdmitResult
from services.api_gateway.billing_client import BillingClient


class _HeldRpc:
    """Broker stand-in: each call waits until the test answers it, as billing would."""

    def __init__(self) -> None:
        self.calls: list[tuple[AdmitRequest, asyncio.Future[bytes]]] = []
        self.called = asyncio.Event()

    async def call(self, queue: str, body: bytes, timeout: float) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.calls.append((AdmitRequest.model_validate_json(body), future))
        self.called.set()
        return await future

    def wallets(self, n: int) -> list[str]:
        return [a.wallet_id for a in self.calls[n][0].admissions]

    def answer(self, n: int) -> None:
        request, future = self.calls[n]
        results = [AdmitResult(batch_id=a.batch_id, ok=True) for a in request.admissions]
        future.set_result(AdmitReply(results=results).model_dump_json().encode())


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


def _client(rpc: _HeldRpc, batch_size: int = 64) -> BillingClient:
    return BillingClient(
        rpc,  # type: ignore[arg-type]
        "billing.rpc",
        "billing.bulk.rpc",
        timeout=5.0,
        batch_max_recipients=10,
        batch_size=batch_size,
        max_in_flight=2,
    )


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_wallet_waits_for_its_rpc_while_others_take_the_free_slot() -> None:
    rpc = _HeldRpc()
    client = _client(rpc)
    a1 = asyncio.create_task(client.admit(_admission("wal_a", 1)))
    await _settle()
    assert [rpc.wallets(0)] == [["wal_a"]]

    # A slot is free, but wal_a's next requests wait for its RPC instead of queueing
    # behind its row lock in a second one.
    later_a = [asyncio.create_task(client.admit(_admission("wal_a", n))) for n in (2, 3)]
    await _settle()
    assert len(rpc.calls) == 1

    # Another wallet takes the free slot at once.
    b1 = asyncio.create_task(client.admit(_admission("wal_b", 1)))
    await _settle()
    assert rpc.wallets(1) == ["wal_b"]
    rpc.answer(1)
    assert (await b1).batch_id == "bat_wal_b_1"
    assert not a1.done()

    # wal_a's RPC ends: its gathered requests ride the next one together, in order.
    rpc.answer(0)
    assert (await a1).batch_id == "bat_wal_a_1"
    await _settle()
    assert [a.batch_id for a in rpc.calls[2][0].admissions] == ["bat_wal_a_2", "bat_wal_a_3"]
    rpc.answer(2)
    assert [r.batch_id for r in await asyncio.gather(*later_a)] == ["bat_wal_a_2", "bat_wal_a_3"]
    assert client.rpcs == 3


async def test_a_wallet_cut_by_a_full_batch_never_has_two_rpcs_in_flight() -> None:
    rpc = _HeldRpc()
    client = _client(rpc, batch_size=2)
    busy = [asyncio.create_task(client.admit(_admission(w, 0))) for w in ("wal_x", "wal_y")]
    await _settle()
    assert len(rpc.calls) == 2  # both slots taken
    tasks = [asyncio.create_task(client.admit(_admission("wal_a", n))) for n in (1, 2, 3)]
    tasks.append(asyncio.create_task(client.admit(_admission("wal_c", 1))))
    await _settle()

    # A slot frees: the batch fills with wal_a's first two requests.
    rpc.answer(0)
    await _settle()
    assert [a.batch_id for a in rpc.calls[2][0].admissions] == ["bat_wal_a_1", "bat_wal_a_2"]
    # The other frees: wal_a's third waits for wal_a's RPC, wal_c goes now.
    rpc.answer(1)
    await _settle()
    assert [a.batch_id for a in rpc.calls[3][0].admissions] == ["bat_wal_c_1"]
    rpc.answer(3)
    rpc.answer(2)
    await _settle()
    assert [a.batch_id for a in rpc.calls[4][0].admissions] == ["bat_wal_a_3"]
    rpc.answer(4)
    results = await asyncio.gather(*busy, *tasks)
    assert [r.batch_id for r in results[2:]] == [
        "bat_wal_a_1",
        "bat_wal_a_2",
        "bat_wal_a_3",
        "bat_wal_c_1",
    ]


async def test_a_flood_from_one_wallet_leaves_in_order_in_full_batches() -> None:
    rpc = _HeldRpc()
    client = _client(rpc, batch_size=64)
    flood = [asyncio.create_task(client.admit(_admission("wal_a", n))) for n in range(1_000)]
    await _settle()
    assert [len(request.admissions) for request, _ in rpc.calls] == [1]
    other = asyncio.create_task(client.admit(_admission("wal_b", 0)))
    await _settle()
    assert rpc.wallets(1) == ["wal_b"]  # the free slot, past the 999 waiting behind wal_a
    rpc.answer(1)
    await other

    # Each of wal_a's RPCs, once answered, lets the next one leave.
    n = 0
    while n < len(rpc.calls):
        if n != 1:
            rpc.answer(n)
        n += 1
        await _settle()
    sizes = [
        len(request.admissions)
        for request, _ in rpc.calls
        if request.admissions[0].wallet_id == "wal_a"
    ]
    assert sizes == [1] + [64] * 15 + [39]
    results = await asyncio.gather(*flood)
    assert [r.batch_id for r in results] == [f"bat_wal_a_{n}" for n in range(1_000)]
