"""Warnings and errors the platform's processes logged during a phase.

The services log one JSON object per line; anything else on their output (a traceback
printed by the interpreter, a crash message) is counted as an error too, since a healthy
process writes nothing but JSON.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

_SAMPLES = 3
_SAMPLE_CHARS = 300
_ERROR_LEVELS = frozenset({"error", "critical", "exception", "fatal"})


class LogWatch:
    """Remembers how far each log has been read, so each phase sees only its own lines."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._offsets: dict[Path, int] = {}

    def mark(self) -> None:
        """Skip everything logged so far."""
        for path in self._directory.glob("*.log"):
            self._offsets[path] = path.stat().st_size

    def read(self) -> dict[str, dict[str, Any]]:
        """Per process: warnings, errors, and the first few lines of each, since the mark."""
        found: dict[str, dict[str, Any]] = {}
        for path in sorted(self._directory.glob("*.log")):
            with path.open("rb") as log:
                log.seek(self._offsets.get(path, 0))
                content = log.read()
            self._offsets[path] = self._offsets.get(path, 0) + len(content)
            counts: Counter[str] = Counter()
            samples: dict[str, list[str]] = {"warning": [], "error": []}
            for line in content.splitlines():
                kind = _kind(line)
                if kind is None:
                    continue
                counts[kind] += 1
                if len(samples[kind]) < _SAMPLES:
                    samples[kind].append(line.decode(errors="replace")[:_SAMPLE_CHARS])
            if counts:
                found[path.stem] = {
                    "warnings": counts["warning"],
                    "errors": counts["error"],
                    "samples": [*samples["error"], *samples["warning"]],
                }
        return found


def _kind(line: bytes) -> str | None:
    if not line.strip():
        return None
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "error"
    if not isinstance(entry, dict):
        return "error"
    level = str(entry.get("level", "")).lower()
    if level in _ERROR_LEVELS:
        return "error"
    if level == "warning":
        return "warning"
    return None
