"""Fixtures of the Mobile Money simulator tests, loaded with `pytest_plugins`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.simulators.mobile_money_client import MomoClient
from tests.simulators.mobile_money_harness import (
    CallbackReceiver,
    RunningMobileMoney,
    start_mobile_money,
    stop_mobile_money,
)


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[CallbackReceiver]:
    """The merchant's callback endpoint, shared by the module's tests."""
    receiver = CallbackReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture(scope="module")
def momo(
    receiver: CallbackReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningMobileMoney]:
    """One simulator for the module; it must exit 0 on SIGTERM at the end."""
    simulator = start_mobile_money(
        tmp_path_factory.mktemp("mobile-money") / "simulator.log",
        "--approval-delay",
        "0.1",
        "--airtel-callback-url",
        f"{receiver.url}/airtel",
    )
    yield simulator
    code = stop_mobile_money(simulator)
    assert code == 0, f"simulator exited {code} on SIGTERM:\n{simulator.log()}"


@pytest.fixture
async def client(momo: RunningMobileMoney, receiver: CallbackReceiver) -> AsyncIterator[MomoClient]:
    """A merchant client against a simulator reset to its start-up state."""
    async with aiohttp.ClientSession() as session:
        client = MomoClient(session, momo.base_url)
        await client.control("POST", "/_sim/reset")
        receiver.received.clear()
        yield client
