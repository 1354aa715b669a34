"""Starting `python -m bench.load` from the benchmark and reading back its results."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]


class LoadFailed(RuntimeError):
    """The load process exited badly or printed no results."""


class LoadProcess:
    """One run of the load generator; its pid is known as soon as it starts."""

    def __init__(self, process: asyncio.subprocess.Process, spec: bytes) -> None:
        self._process = process
        self._spec = spec

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    async def start(cls, spec: dict[str, Any]) -> LoadProcess:
        """Start the load generator; it waits for its spec on stdin."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process, orjson.dumps(spec))

    async def result(self, timeout: float) -> dict[str, Any]:
        """Hand over the spec and wait for the results; kill the process after `timeout`."""
        try:
            out, _ = await asyncio.wait_for(self._process.communicate(self._spec), timeout)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
            raise LoadFailed(f"the load process did not finish within {timeout:.0f}s") from None
        if self._process.returncode != 0:
            raise LoadFailed(f"the load process exited with {self._process.returncode}")
        lines = out.strip().splitlines()
        if not lines:
            raise LoadFailed("the load process printed no results")
        result: dict[str, Any] = orjson.loads(lines[-1])
        return result
