"""Messages as the handset would show them, kept in memory for inspection."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any


class StoredMessage:
    """One complete message (all parts joined) as the carrier received it."""

    __slots__ = ("carrier", "carrier_message_id", "parts", "received_at", "recipient", "text")

    def __init__(
        self,
        recipient: str,
        text: str,
        carrier: str,
        carrier_message_id: str,
        received_at: float,
        parts: int,
    ) -> None:
        # Interned: a benchmark sends many messages to few numbers, one copy each is enough.
        self.recipient = sys.intern(recipient)
        self.text = text
        self.carrier = carrier
        self.carrier_message_id = carrier_message_id
        self.received_at = received_at  # Unix time the last part's submit_sm arrived
        self.parts = parts

    def as_json(self) -> dict[str, Any]:
        """The contract's shape for `GET /messages`."""
        received = datetime.fromtimestamp(self.received_at, UTC)
        return {
            "recipient": self.recipient,
            "text": self.text,
            "carrier": self.carrier,
            "carrierMessageId": self.carrier_message_id,
            "receivedAt": received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "parts": self.parts,
        }


class MessageStore:
    """A bounded, oldest-dropped log of messages with an index by recipient.

    Also counts duplicates: stored messages that repeat an earlier (carrier, recipient,
    text). With a count per key, that is simply `stored - distinct keys`, which stays right
    as the oldest messages are dropped. Keys are hashes rather than tuples: at a million
    messages that saves ~60 MB, and a 64-bit collision in a test run is not a real risk.
    """

    __slots__ = ("_by_recipient", "_capacity", "_keys", "_messages")

    def __init__(self, capacity: int) -> None:
        self._messages: deque[StoredMessage] = deque()
        self._by_recipient: dict[str, deque[StoredMessage]] = {}
        self._keys: dict[int, int] = {}
        self._capacity = capacity

    def add(self, message: StoredMessage) -> None:
        """Store a message, dropping the oldest one when full."""
        if len(self._messages) >= self._capacity:
            self._drop_oldest()
        self._messages.append(message)
        recipient_log = self._by_recipient.get(message.recipient)
        if recipient_log is None:
            recipient_log = self._by_recipient[message.recipient] = deque()
        recipient_log.append(message)
        key = hash((message.carrier, message.recipient, message.text))
        self._keys[key] = self._keys.get(key, 0) + 1

    def _drop_oldest(self) -> None:
        oldest = self._messages.popleft()
        # The oldest message overall is also the oldest of its recipient.
        recipient_log = self._by_recipient[oldest.recipient]
        recipient_log.popleft()
        if not recipient_log:
            del self._by_recipient[oldest.recipient]
        key = hash((oldest.carrier, oldest.recipient, oldest.text))
        remaining = self._keys[key] - 1
        if remaining:
            self._keys[key] = remaining
        else:
            del self._keys[key]

    def for_recipient(self, recipient: str, limit: int) -> list[StoredMessage]:
        """The newest `limit` messages to `recipient`, oldest first."""
        return _newest(self._by_recipient.get(recipient, deque()), limit)

    def newest(self, limit: int) -> list[StoredMessage]:
        """The newest `limit` messages to anyone, oldest first."""
        return _newest(self._messages, limit)

    def clear(self) -> int:
        """Forget every message; return how many there were."""
        count = len(self._messages)
        self._messages.clear()
        self._by_recipient.clear()
        self._keys.clear()
        return count

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[StoredMessage]:
        return iter(self._messages)

    @property
    def duplicates(self) -> int:
        """Stored messages repeating an earlier (carrier, recipient, text)."""
        return len(self._messages) - len(self._keys)


def _newest(log: deque[StoredMessage], limit: int) -> list[StoredMessage]:
    newest_first = list(islice(reversed(log), limit))
    newest_first.reverse()
    return newest_first
