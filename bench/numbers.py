"""Random, distinct Ugandan mobile numbers for load, clear of the sandbox numbers.

Every phase draws from its own stream, and the streams never share a number, so each
number reaches the carrier simulator at most once in a run: an OTP can be found again with
`GET /messages?recipient=`, and the simulator's duplicate counter only ever counts real
resubmissions.
"""

from __future__ import annotations

import random

# (NSN prefix, first 7-digit suffix, end): MTN 077x and 078x, Airtel 070x and 075x.
# Airtel starts at 0701: 0700 000 xxx holds the carrier simulator's sandbox numbers.
_BLOCKS: tuple[tuple[str, int, int], ...] = (
    ("77", 0, 10**7),
    ("78", 0, 10**7),
    ("70", 10**6, 10**7),
    ("75", 0, 10**7),
)
_SIZE = sum(end - start for _, start, end in _BLOCKS)

# Stream ids: a number's index modulo STREAMS says which stream may use it.
STREAMS = 4
SINGLE, CAMPAIGN, OTP, CEILING = range(STREAMS)


def number_at(index: int) -> str:
    """The E.164 number at `index` of the combined ranges."""
    for prefix, start, end in _BLOCKS:
        if index < end - start:
            return f"+256{prefix}{start + index:07d}"
        index -= end - start
    raise IndexError(index)


class NumberStream:
    """Distinct numbers drawn at random from one stream."""

    def __init__(self, stream: int, seed: int | None = None) -> None:
        if not 0 <= stream < STREAMS:
            raise ValueError(f"stream must be in 0..{STREAMS - 1}")
        self._stream = stream
        self._rng = random.Random(seed)
        self._seen: set[int] = set()

    def next(self) -> str:
        """A number this stream has not given before."""
        while True:
            index = self._rng.randrange(_SIZE // STREAMS) * STREAMS + self._stream
            if index not in self._seen:
                self._seen.add(index)
                return number_at(index)

    def take(self, count: int) -> list[str]:
        """`count` numbers this stream has not given before."""
        return [self.next() for _ in range(count)]
