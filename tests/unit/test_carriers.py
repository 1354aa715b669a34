"""Carrier layer without a network: classification, pacing, field formats, pool balancing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

import pytest

from libs.common.throttle import TokenBucket
from services.sender.carriers.base import (
    NO_RESPONSE,
    CarrierLink,
    Submission,
    SubmitKind,
    SubmitOutcome,
    classify,
    command_status_name,
)
from services.sender.carriers.pool import CarrierPool
from services.sender.carriers.smpp import SmppBind, SmppBindConfig, relative_validity
from services.sender.receipts import Receipt


@pytest.mark.parametrize("status", [0x58, 0x14])
def test_throttling_statuses_are_throttled(status: int) -> None:
    assert classify(status) is SubmitKind.THROTTLED


@pytest.mark.parametrize("status", [0x08, 0x64, 0x45, 0xFF, 0x04, 0x0C, 0x1234, 0xC4])
def test_system_and_unknown_statuses_are_transient(status: int) -> None:
    assert classify(status) is SubmitKind.TRANSIENT


PERMANENT = (0x01, 0x0B, 0x0A, 0x43, 0x104, 0x65, 0x66, 0x50, 0x51, 0x48, 0x49, 0x15, 0x06)
PERMANENT_TOO = (0x07, 0x61, 0x62, 0x33, 0x40, 0x42)


@pytest.mark.parametrize("status", [*PERMANENT, *PERMANENT_TOO])
def test_statuses_no_retry_can_fix_are_permanent(status: int) -> None:
    assert classify(status) is SubmitKind.PERMANENT


def test_ok_is_ok() -> None:
    assert classify(0) is SubmitKind.OK


def test_command_status_names() -> None:
    assert command_status_name(0x0B) == "ESME_RINVDSTADR"
    assert command_status_name(0x58) == "ESME_RTHROTTLED"
    assert command_status_name(0x104) == "ESME_RINVDCS"
    assert command_status_name(0x0400) == "0x00000400"


def test_submit_kind_values_are_stable_strings() -> None:
    assert [kind.value for kind in SubmitKind] == [
        "ok",
        "throttled",
        "transient",
        "permanent",
        "connection_lost",
    ]


async def test_token_bucket_paces_to_its_rate() -> None:
    bucket = TokenBucket(rate=100)
    started = time.monotonic()
    for _ in range(21):
        await bucket.acquire()
    elapsed = time.monotonic() - started
    assert 0.19 <= elapsed < 0.6


async def test_token_bucket_burst_passes_at_once_then_paces() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    started = time.monotonic()
    for _ in range(5):
        await bucket.acquire()
    assert time.monotonic() - started < 0.05
    await bucket.acquire()
    assert time.monotonic() - started >= 0.09


async def test_unlimited_bucket_never_waits() -> None:
    bucket = TokenBucket(rate=0)
    started = time.monotonic()
    for _ in range(1000):
        await bucket.acquire()
    assert time.monotonic() - started < 0.2


async def test_pause_holds_every_waiter_and_only_extends() -> None:
    bucket = TokenBucket(rate=0)
    bucket.pause(0.2)
    bucket.pause(0.05)  # a shorter pause must not cut the first one short
    started = time.monotonic()
    await asyncio.gather(*(bucket.acquire() for _ in range(3)))
    assert time.monotonic() - started >= 0.19


async def test_pause_ordered_while_waiting_holds_queued_callers() -> None:
    bucket = TokenBucket(rate=20)
    await bucket.acquire()
    started = time.monotonic()
    waiter = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    bucket.pause(0.3)
    await asyncio.wait_for(waiter, timeout=2)
    assert time.monotonic() - started >= 0.29


async def test_token_bucket_serves_callers_in_arrival_order() -> None:
    bucket = TokenBucket(rate=200)
    order: list[int] = []

    async def take(index: int) -> None:
        await bucket.acquire()
        order.append(index)

    await asyncio.gather(*(take(index) for index in range(10)))
    assert order == list(range(10))


async def test_try_acquire_takes_a_free_slot_and_never_jumps_a_pause_or_a_queue() -> None:
    """`try_acquire` lets a caller go without awaiting: only when `acquire` would not wait."""
    now = [100.0]
    unlimited = TokenBucket(rate=0, clock=lambda: now[0])
    assert unlimited.try_acquire() and unlimited.try_acquire()
    unlimited.pause(0.5)
    assert not unlimited.try_acquire()
    waiter = asyncio.ensure_future(unlimited.acquire())  # holds the lock while paused
    await asyncio.sleep(0)
    now[0] += 1.0
    assert not unlimited.try_acquire()  # the pause is over, but a caller is still queued
    await asyncio.wait_for(waiter, timeout=2)
    assert unlimited.try_acquire()

    paced = TokenBucket(rate=10, clock=lambda: now[0])
    assert paced.try_acquire()
    assert not paced.try_acquire()  # the next slot is a tenth of a second away
    now[0] += 0.1
    assert paced.try_acquire()


def test_token_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=-1)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0)


@pytest.mark.parametrize(
    ("validity", "expected"),
    [
        (timedelta(days=1), "000001000000000R"),
        (timedelta(hours=48, minutes=30), "000002003000000R"),
        (timedelta(minutes=5, seconds=7, milliseconds=300), "000000000507300R"),
        (timedelta(days=400), "000099235959000R"),
    ],
)
def test_relative_validity_period(validity: timedelta, expected: str) -> None:
    assert relative_validity(validity) == expected
    assert len(expected) == 16


def test_non_positive_validity_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        relative_validity(timedelta(0))


def test_bind_config_rejects_unknown_bind_type_and_hides_the_password() -> None:
    with pytest.raises(ValueError):
        SmppBindConfig("127.0.0.1", 2775, "mtn", "pw", bind_type="XX")
    assert "s3cret" not in repr(SmppBindConfig("127.0.0.1", 2775, "mtn", "s3cret"))


def _unbound(response_timeout: float = 0.05) -> SmppBind:
    # Never started, so never bound: only checks made before sending can answer.
    config = SmppBindConfig("127.0.0.1", 9, "mtn", "pw", response_timeout=response_timeout)
    return SmppBind("mtn", config, lambda receipt: None)


async def _submit(link: CarrierLink, destination: str, parts: Sequence[bytes]) -> SubmitOutcome:
    return await link.submit(Submission(destination, parts, 0, 0, None))


async def test_oversized_part_is_refused_before_anything_is_sent() -> None:
    outcome = await _submit(_unbound(), "+256700000112", [b"ok", b"x" * 255])
    assert outcome == SubmitOutcome(SubmitKind.PERMANENT, [], NO_RESPONSE, "ESME_RINVMSGLEN")


@pytest.mark.parametrize("destination", ["", "+", "+2567000001121234567890"])
async def test_impossible_destination_is_refused(destination: str) -> None:
    outcome = await _submit(_unbound(), destination, [b"hi"])
    assert (outcome.kind, outcome.error_code) == (SubmitKind.PERMANENT, "ESME_RINVDSTADR")


async def test_submit_on_a_bind_that_never_comes_up_is_transient_and_unsent() -> None:
    started = time.monotonic()
    outcome = await _submit(_unbound(response_timeout=0.1), "+256700000112", [b"hi"])
    assert outcome == SubmitOutcome(SubmitKind.TRANSIENT, [], NO_RESPONSE, "not_bound")
    assert 0.09 <= time.monotonic() - started < 1


class StubLink:
    """Stands in for a bind: fixed state and load, records what it was asked to send."""

    def __init__(self, name: str, *, up: bool = True, outstanding: int = 0) -> None:
        self.name = name
        self._up = asyncio.Event()
        if up:
            self._up.set()
        self.outstanding = outstanding
        self.can_submit = True
        self.sent: list[str] = []
        self.closed = False

    async def start(self) -> None:
        pass

    def is_up(self) -> bool:
        return self._up.is_set()

    def come_up(self) -> None:
        self._up.set()

    async def wait_up(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def submit(self, message: Submission) -> SubmitOutcome:
        self.sent.append(message.destination)
        return SubmitOutcome(
            SubmitKind.OK, [f"{self.name}-{i}" for i in range(len(message.parts))], 0, None
        )

    async def close(self) -> None:
        self.closed = True


async def test_pool_prefers_the_least_loaded_link_that_is_up() -> None:
    busy, idle, down = StubLink("busy", outstanding=5), StubLink("idle"), StubLink("down", up=False)
    pool = CarrierPool("mtn", [busy, down, idle], wait_timeout=0.1)
    outcome = await _submit(pool, "+256700000112", [b"a", b"b"])
    assert outcome.carrier_message_ids == ["idle-0", "idle-1"]
    assert (busy.sent, down.sent) == ([], [])


async def test_pool_spreads_ties_over_every_link() -> None:
    links = [StubLink(f"b{i}") for i in range(3)]
    pool = CarrierPool("mtn", links, wait_timeout=0.1)
    for _ in range(6):
        await _submit(pool, "+256700000112", [b"a"])
    assert [len(link.sent) for link in links] == [2, 2, 2]


async def test_pool_is_up_while_one_link_is_and_waits_for_one_otherwise() -> None:
    first, second = StubLink("b0", up=False), StubLink("b1", up=False)
    pool = CarrierPool("mtn", [first, second], wait_timeout=1)
    assert not pool.is_up()
    assert await pool.wait_up(0.05) is False
    asyncio.get_running_loop().call_later(0.05, second.come_up)
    outcome = await _submit(pool, "+256700000112", [b"a"])
    assert outcome.carrier_message_ids == ["b1-0"] and pool.is_up()


async def test_pool_with_no_link_up_is_transient_and_unsent() -> None:
    pool = CarrierPool("mtn", [StubLink("b0", up=False)], wait_timeout=0.05)
    outcome = await _submit(pool, "+256700000112", [b"a"])
    assert outcome == SubmitOutcome(SubmitKind.TRANSIENT, [], NO_RESPONSE, "not_bound")


async def test_pool_closes_every_link() -> None:
    links = [StubLink("b0"), StubLink("b1")]
    await CarrierPool("mtn", links, wait_timeout=0.1).close()
    assert all(link.closed for link in links)


def test_smpp_pool_builds_the_requested_binds() -> None:
    received: list[Receipt] = []
    config = SmppBindConfig("127.0.0.1", 2775, "mtn", "pw")
    pool = CarrierPool.smpp("mtn", config, received.append, binds=3)
    assert len(pool.links) == 3 and pool.name == "mtn"
    assert isinstance(pool, CarrierLink) and isinstance(pool.links[0], CarrierLink)
