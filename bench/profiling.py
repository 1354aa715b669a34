"""Sampling one service with py-spy while a phase runs (`--profile SERVICE`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
# py-spy's output formats and the file suffix each gets.
FORMATS = {"flamegraph": ".svg", "speedscope": ".speedscope.json", "raw": ".folded.txt"}


def available() -> bool:
    """Whether py-spy is installed next to this interpreter."""
    return PY_SPY.exists()


class Profile:
    """A py-spy recording that starts after `delay` seconds and lasts `seconds`."""

    def __init__(self, service: str, pid: int, output_dir: Path, fmt: str) -> None:
        self.service = service
        self.pid = pid
        self.path = output_dir / f"{service}{FORMATS[fmt]}"
        self.format = fmt
        self.error: str | None = None
        self._task: asyncio.Future[None] | None = None

    def start(self, delay: float, seconds: float) -> None:
        """Record in the background; py-spy samples without stopping the process."""
        self._task = asyncio.ensure_future(self._record(delay, seconds))

    async def _record(self, delay: float, seconds: float) -> None:
        await asyncio.sleep(delay)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            str(PY_SPY),
            "record",
            "--nonblocking",
            "--duration",
            str(max(1, round(seconds))),
            "--format",
            self.format,
            "--output",
            str(self.path),
            "--pid",
            str(self.pid),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            self.error = err.decode(errors="replace").strip()[-500:]

    async def finish(self) -> dict[str, str | None]:
        """Wait for the recording; say where it is, or why there is none."""
        if self._task is not None:
            await self._task
        written = self.error is None and self.path.exists()
        return {
            "service": self.service,
            "file": str(self.path) if written else None,
            "error": self.error,
        }
