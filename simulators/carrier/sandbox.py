"""The sandbox numbers of the API contract and what the simulated carrier does for each."""

from __future__ import annotations

import enum

REJECTED = "+256700000111"  # submit_sm refused, permanently
UNDELIVERED = "+256700000222"  # accepted, receipt UNDELIV
THROTTLED_ONCE = "+256700000333"  # first identical submit throttled, the retry accepted


class Outcome(enum.Enum):
    """What the carrier answers to one submit_sm."""

    DELIVER = "deliver"
    UNDELIVER = "undeliver"
    REJECT = "reject"
    THROTTLE = "throttle"


def normalise_msisdn(address: str) -> str:
    """E.164 with a leading '+', from `+256…`, `256…`, ` 256…` (a URL-decoded '+') or `0…`."""
    digits = address.strip().lstrip("+")
    if digits.startswith("0"):
        digits = "256" + digits[1:]
    return "+" + digits


class SandboxRules:
    """Decides each submit's outcome; remembers which submits to 333 were throttled."""

    __slots__ = ("_throttled",)

    def __init__(self) -> None:
        self._throttled: set[tuple[str, bytes]] = set()

    def outcome(self, recipient: str, content: bytes) -> Outcome:
        """The outcome for a submit to `recipient` whose message bytes are `content`."""
        if recipient == REJECTED:
            return Outcome.REJECT
        if recipient == UNDELIVERED:
            return Outcome.UNDELIVER
        if recipient == THROTTLED_ONCE:
            key = (recipient, content)
            if key in self._throttled:
                # Forget it, so the next message to this number is throttled once again.
                self._throttled.discard(key)
                return Outcome.DELIVER
            self._throttled.add(key)
            return Outcome.THROTTLE
        return Outcome.DELIVER

    def reset(self) -> None:
        """Forget pending throttles, so a fresh test run starts from the documented behaviour."""
        self._throttled.clear()
