"""Joins the parts of concatenated messages, as a handset would before showing them."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.carrier.encoding import Part

PartialKey = tuple[str, str, str, int]  # (system_id, source_addr, destination_addr, ref)


@dataclass(slots=True)
class Partial:
    """The parts of one message seen so far, by 1-based sequence number."""

    total: int
    data_coding: int
    bodies: dict[int, bytes] = field(default_factory=dict)
    message_ids: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Assembled:
    """A message whose every part has arrived."""

    body: bytes
    data_coding: int
    first_message_id: str
    parts: int


class Reassembler:
    """Collects parts keyed by (system_id, source, destination, reference).

    Bounded: when more than `max_partials` messages are incomplete, the oldest incomplete
    one is dropped (its missing parts are never coming in a sane run).
    """

    __slots__ = ("_max_partials", "_partials")

    def __init__(self, max_partials: int = 100_000) -> None:
        self._partials: dict[PartialKey, Partial] = {}
        self._max_partials = max_partials

    def add(
        self, key: PartialKey, part: Part, data_coding: int, message_id: str
    ) -> Assembled | None:
        """Record one part; return the whole message when this part completes it."""
        if part.total <= 1:
            # A "concatenated" message of one part is just a message.
            return Assembled(part.body, data_coding, message_id, 1)
        partial = self._partials.get(key)
        if partial is None or partial.total != part.total:
            if partial is None and len(self._partials) >= self._max_partials:
                del self._partials[next(iter(self._partials))]
            partial = Partial(part.total, data_coding)
            self._partials[key] = partial
        # A resent part (e.g. after a lost submit_sm_resp) replaces the earlier copy.
        partial.bodies[part.seq] = part.body
        partial.message_ids[part.seq] = message_id
        if len(partial.bodies) < partial.total:
            return None
        del self._partials[key]
        # Sorted rather than range(1, total + 1): odd sequence numbers (0-based senders) still
        # give the message in order instead of losing it.
        seqs = sorted(partial.bodies)
        body = b"".join(partial.bodies[s] for s in seqs)
        return Assembled(body, partial.data_coding, partial.message_ids[seqs[0]], partial.total)

    @property
    def pending(self) -> int:
        """Messages still missing parts."""
        return len(self._partials)
