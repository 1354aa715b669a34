"""Counters and run-time knobs shared by the SMPP side and the inspection API."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Counters:
    """Traffic since start or since the last `DELETE /messages`."""

    submits: int = 0
    accepted: int = 0
    rejected: int = 0
    throttled: int = 0
    receipts_sent: int = 0
    receipt_retries: int = 0

    def reset(self) -> None:
        """Back to zero, for a fresh test or benchmark run."""
        for name in self.__dataclass_fields__:
            setattr(self, name, 0)

    def as_json(self) -> dict[str, int]:
        """The counters as a JSON-ready dict."""
        return asdict(self)


@dataclass(slots=True)
class RuntimeConfig:
    """Behaviour that `POST /config` changes while the simulator runs."""

    receipt_delay: float
    submit_delay: float = 0.0
    paused: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        """Apply validated changes; raise ValueError naming the first bad field."""
        updates: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("receipt_delay", "submit_delay"):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a number >= 0")
                updates[name] = float(value)
            elif name == "paused":
                if not isinstance(value, bool):
                    raise ValueError("paused must be true or false")
                updates[name] = value
            else:
                raise ValueError(f"unknown setting {name!r}")
        for name, value in updates.items():
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        """The knobs as a JSON-ready dict."""
        return asdict(self)
