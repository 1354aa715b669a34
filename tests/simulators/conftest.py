"""Fixtures: a carrier simulator process per test, and SMPP binds that are always closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.simulators.harness import Esme, RunningSimulator, start_simulator, stop_simulator

StartSimulator = Callable[..., RunningSimulator]
BindEsme = Callable[..., Awaitable[Esme]]


@pytest.fixture
def start_carrier(tmp_path: Path) -> Iterator[StartSimulator]:
    """Start simulators with extra options; each must exit 0 on SIGTERM at the end."""
    started: list[RunningSimulator] = []

    def start(*args: str) -> RunningSimulator:
        simulator = start_simulator(tmp_path / f"simulator-{len(started)}.log", *args)
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        code = stop_simulator(simulator)
        assert code == 0, f"simulator exited {code} on SIGTERM:\n{simulator.log()}"


@pytest.fixture
def carrier(start_carrier: StartSimulator) -> RunningSimulator:
    """A simulator with a short receipt delay, so tests do not wait half a second per receipt."""
    return start_carrier("--receipt-delay", "0.05")


@pytest.fixture
async def bind() -> AsyncIterator[BindEsme]:
    """Bind ESMEs to a simulator; closes whatever is still bound at the end."""
    esmes: list[Esme] = []

    async def connect(simulator: RunningSimulator, system_id: str = "mtn", **kwargs: str) -> Esme:
        esme = await Esme.bind(simulator.smpp_port, system_id, **kwargs)
        esmes.append(esme)
        return esme

    yield connect
    for esme in esmes:
        await esme.close()
    # smpp34's tokio threads must settle before the loop (and interpreter) goes away.
    await asyncio.sleep(0.2)
