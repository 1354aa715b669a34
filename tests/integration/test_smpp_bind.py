"""SmppBind against the carrier simulator running as a real process speaking SMPP 3.4."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvloop

from services.sender.carriers.base import Submission, SubmitKind, SubmitOutcome
from services.sender.carriers.pool import CarrierPool
from services.sender.carriers.smpp import SmppBind, SmppBindConfig
from services.sender.receipts import Receipt, id_candidates

ROOT = Path(__file__).resolve().parents[2]
DELIVERED = "+256700000112"
REJECTED = "+256700000111"  # sandbox: ESME_RINVDSTADR
UNDELIVERED = "+256700000222"  # sandbox: receipt UNDELIV
THROTTLED_ONCE = "+256700000333"  # sandbox: ESME_RTHROTTLED once, then accepted

pytestmark = pytest.mark.skipif(
    not (ROOT / "simulators" / "carrier" / "__main__.py").exists(),
    reason="the carrier simulator is not in this tree",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Simulator:
    """The carrier simulator as a subprocess, restartable on the same ports."""

    def __init__(self, log_path: Path) -> None:
        self.smpp_port, self.http_port = free_port(), free_port()
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def spawn(self) -> None:
        command = [sys.executable, "-m", "simulators.carrier"]
        ports = ["--smpp-port", str(self.smpp_port), "--http-port", str(self.http_port)]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, *ports], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    async def start(self, timeout: float = 20) -> None:
        """Spawn the simulator and wait for its health check (SMPP port listening)."""
        self.spawn()
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            assert self._process.poll() is None, self._log_path.read_text()[-2000:]
            try:
                await self.get("/healthz")
                return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        if self._process is not None:
            self._process.wait(timeout=10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    async def get(self, path: str, **params: str) -> Any:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + path, params=params, timeout=aiohttp.ClientTimeout(5)) as resp,
        ):
            resp.raise_for_status()
            return await resp.json()

    async def configure(self, **config: Any) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + "/config", json=config, timeout=aiohttp.ClientTimeout(5)) as resp,
        ):
            resp.raise_for_status()


class ReceiptBox:
    """The on_receipt callback: only appends, as the reader loop requires."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self._arrived = asyncio.Event()

    def __call__(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)
        self._arrived.set()

    async def for_ids(self, message_ids: list[str], timeout: float = 10) -> list[Receipt]:
        """The receipts of these submit ids, in that order, once they have all arrived."""
        async with asyncio.timeout(timeout):
            while True:
                found = [self._find(message_id) for message_id in message_ids]
                if all(found):
                    return [receipt for receipt in found if receipt is not None]
                self._arrived.clear()
                await self._arrived.wait()

    def _find(self, message_id: str) -> Receipt | None:
        candidates = set(id_candidates(message_id))
        return next((r for r in self.receipts if r.carrier_message_id in candidates), None)


MakeBind = Callable[..., Awaitable[SmppBind]]


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait until condition() holds, for state that offers nothing to await."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(tmp_path / "simulator.log")
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def receipts() -> ReceiptBox:
    return ReceiptBox()


@pytest.fixture
async def running(simulator: Simulator) -> Simulator:
    await simulator.start()
    return simulator


@pytest.fixture
async def make_bind(running: Simulator, receipts: ReceiptBox) -> AsyncIterator[MakeBind]:
    binds: list[SmppBind] = []

    async def make(**overrides: Any) -> SmppBind:
        settings: dict[str, Any] = {"reconnect_min": 0.1, "reconnect_max": 1.0, **overrides}
        config = SmppBindConfig("127.0.0.1", running.smpp_port, "mtn", "secret", **settings)
        bind = SmppBind("mtn", config, receipts)
        binds.append(bind)
        await bind.start()
        assert await bind.wait_up(10)
        return bind

    yield make
    await asyncio.gather(*(bind.close() for bind in binds))


async def send(bind: SmppBind, destination: str, parts: list[bytes], esm: int = 0) -> SubmitOutcome:
    return await bind.submit(Submission(destination, parts, 0, esm, None))


async def test_bound_submit_is_accepted_and_its_receipt_reaches_the_callback(
    make_bind: MakeBind, receipts: ReceiptBox, simulator: Simulator
) -> None:
    bind = await make_bind()
    outcome = await send(bind, DELIVERED, [b"Your code is 4821"])
    assert (outcome.kind, outcome.command_status, outcome.error_code) == (SubmitKind.OK, 0, None)
    assert len(outcome.carrier_message_ids) == 1
    [receipt] = await receipts.for_ids(outcome.carrier_message_ids)
    assert (receipt.state, receipt.recipient) == ("DELIVRD", DELIVERED.lstrip("+"))
    [stored] = (await simulator.get("/messages", recipient=DELIVERED))["data"]
    assert (stored["carrierMessageId"], stored["text"]) == (
        receipt.carrier_message_id,
        "Your code is 4821",
    )


async def test_undeliverable_recipient_gets_an_undeliv_receipt(
    make_bind: MakeBind, receipts: ReceiptBox
) -> None:
    bind = await make_bind()
    outcome = await send(bind, UNDELIVERED, [b"hello"])
    assert outcome.kind is SubmitKind.OK
    [receipt] = await receipts.for_ids(outcome.carrier_message_ids)
    assert receipt.state == "UNDELIV"


async def test_rejected_destination_is_permanent(make_bind: MakeBind) -> None:
    bind = await make_bind()
    outcome = await send(bind, REJECTED, [b"hello"])
    assert outcome == SubmitOutcome(SubmitKind.PERMANENT, [], 0x0B, "ESME_RINVDSTADR")


async def test_throttled_part_is_offered_again_after_the_pause(
    make_bind: MakeBind, simulator: Simulator
) -> None:
    bind = await make_bind()
    started = asyncio.get_running_loop().time()
    outcome = await send(bind, THROTTLED_ONCE, [b"hello"])
    assert outcome.kind is SubmitKind.OK
    # The carrier's ESME_RTHROTTLED paused the bind before the same part went again.
    assert asyncio.get_running_loop().time() - started >= 0.25
    stats = await simulator.get("/stats")
    assert stats["throttled"] == 1


async def test_throttled_parts_of_a_long_message_are_each_retried_once(
    make_bind: MakeBind, simulator: Simulator
) -> None:
    bind = await make_bind()
    parts = [bytes([5, 0, 3, 0x2B, 2, seq]) + b"segment %d " % seq * 10 for seq in (1, 2)]
    outcome = await send(bind, THROTTLED_ONCE, parts, esm=0x40)
    assert outcome.kind is SubmitKind.OK
    assert len(outcome.carrier_message_ids) == 2
    [stored] = (await simulator.get("/messages", recipient=THROTTLED_ONCE))["data"]
    assert stored["parts"] == 2
    assert (await simulator.get("/stats"))["duplicates"] == 0


async def test_three_part_message_gets_three_ids_and_three_receipts(
    make_bind: MakeBind, receipts: ReceiptBox, simulator: Simulator
) -> None:
    bind = await make_bind()
    # 6-octet UDH: concatenated SMS, 8-bit reference 0x2A, 3 parts (3GPP TS 23.040 §9.2.3.24.1).
    parts = [bytes([5, 0, 3, 0x2A, 3, seq]) + b"part %d " % seq * 10 for seq in (1, 2, 3)]
    outcome = await send(bind, DELIVERED, parts, esm=0x40)
    assert outcome.kind is SubmitKind.OK
    assert len(set(outcome.carrier_message_ids)) == 3
    delivered = await receipts.for_ids(outcome.carrier_message_ids)
    assert [receipt.state for receipt in delivered] == ["DELIVRD"] * 3
    [stored] = (await simulator.get("/messages", recipient=DELIVERED))["data"]
    assert stored["parts"] == 3
    assert stored["text"] == "".join(f"part {seq} " * 10 for seq in (1, 2, 3))


async def test_window_caps_outstanding_submits(make_bind: MakeBind, simulator: Simulator) -> None:
    bind = await make_bind(window=2, rate=0)
    await simulator.configure(submit_delay=0.3)
    started = time.monotonic()
    batch = asyncio.gather(*(send(bind, DELIVERED, [b"w%d" % i]) for i in range(6)))
    peak = 0
    while not batch.done():
        peak = max(peak, bind.outstanding)
        await asyncio.sleep(0.005)
    outcomes = await batch
    assert all(outcome.kind is SubmitKind.OK for outcome in outcomes)
    assert peak == 2
    # Six submits, two at a time, 0.3 s each: three rounds. Unwindowed they take one.
    assert time.monotonic() - started >= 0.85


async def test_bind_rebinds_by_itself_after_the_smsc_restarts(
    make_bind: MakeBind, simulator: Simulator, receipts: ReceiptBox
) -> None:
    bind = await make_bind()
    assert (await send(bind, DELIVERED, [b"before"])).kind is SubmitKind.OK
    simulator.kill()
    await eventually(lambda: not bind.is_up())
    await simulator.start()
    assert await bind.wait_up(15)
    outcome = await send(bind, DELIVERED, [b"after"])
    assert outcome.kind is SubmitKind.OK
    await receipts.for_ids(outcome.carrier_message_ids)


async def test_rate_limit_paces_submits(make_bind: MakeBind) -> None:
    bind = await make_bind(rate=50, window=10)
    started = time.monotonic()
    outcomes = await asyncio.gather(*(send(bind, DELIVERED, [b"r%d" % i]) for i in range(100)))
    elapsed = time.monotonic() - started
    assert all(outcome.kind is SubmitKind.OK for outcome in outcomes)
    # 100 submits at 50/s: the first goes at once, the other 99 one every 20 ms.
    assert elapsed >= 1.8


async def test_pool_binds_several_times_and_spreads_submits_over_them(
    running: Simulator, receipts: ReceiptBox
) -> None:
    config = SmppBindConfig("127.0.0.1", running.smpp_port, "mtn", "secret", window=1, rate=0)
    pool = CarrierPool.smpp("mtn", config, receipts, binds=2)
    await pool.start()
    try:
        await eventually(lambda: all(link.is_up() for link in pool.links))
        assert (await running.get("/stats"))["binds"] == {"mtn": 2}
        await running.configure(submit_delay=0.2)
        batch = asyncio.gather(
            *(pool.submit(Submission(DELIVERED, [b"p%d" % i], 0, 0, None)) for i in range(4))
        )
        peak = 0
        while not batch.done():
            peak = max(peak, pool.outstanding)
            await asyncio.sleep(0.005)
        assert all(outcome.kind is SubmitKind.OK for outcome in await batch)
        # One outstanding per bind: two at once means both binds carried traffic.
        assert peak == 2
    finally:
        await pool.close()


async def test_a_receiver_answers_a_receipt_only_once_it_is_stored(
    make_bind: MakeBind, running: Simulator
) -> None:
    """A receipt whose store fails is answered with an error and offered again; once stored,
    it is answered and never offered again."""
    offered: list[Receipt] = []
    failing = True

    def store(receipt: Receipt) -> asyncio.Future[None]:
        offered.append(receipt)
        future = asyncio.get_running_loop().create_future()
        if failing:
            future.set_exception(OSError("database away"))
        else:
            future.set_result(None)
        return future

    config = SmppBindConfig(
        "127.0.0.1", running.smpp_port, "mtn", "secret", bind_type="RX", reconnect_min=0.1
    )
    receiver = SmppBind("mtn", config, store)
    await receiver.start()
    try:
        assert await receiver.wait_up(10)
        transmitter = await make_bind(bind_type="TX")
        outcome = await send(transmitter, DELIVERED, [b"stored before answered"])
        await eventually(lambda: len(offered) >= 2)  # refused once, so offered again
        failing = False
        async with asyncio.timeout(10):
            while (await running.get("/stats"))["receipts_pending"]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        answered = len(offered)
        await asyncio.sleep(1.0)
        assert len(offered) == answered
        assert {r.carrier_message_id for r in offered} == set(outcome.carrier_message_ids)
    finally:
        await receiver.close()


def test_the_bind_works_on_uvloop_as_the_services_run_it(tmp_path: Path) -> None:
    """uvloop's transports differ from asyncio's in ways only a real run shows."""

    async def scenario() -> None:
        simulator = Simulator(tmp_path / "simulator.log")
        try:
            await simulator.start()
            box = ReceiptBox()
            config = SmppBindConfig("127.0.0.1", simulator.smpp_port, "mtn", "secret")
            bind = SmppBind("mtn", config, box)
            await bind.start()
            try:
                assert await bind.wait_up(10)
                outcome = await send(bind, DELIVERED, [b"on uvloop"])
                assert outcome.kind is SubmitKind.OK
                [receipt] = await box.for_ids(outcome.carrier_message_ids)
                assert receipt.state == "DELIVRD"
            finally:
                await bind.close()
        finally:
            simulator.stop()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
