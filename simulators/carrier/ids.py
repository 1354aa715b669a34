"""Message ids the simulated carriers hand out in submit_sm_resp and quote in receipts."""

from __future__ import annotations

import secrets

from simulators.carrier.settings import IdFormat, ReceiptIdFormat

# Ids are a per-carrier counter rendered as 10 hex digits (40 bits). Each run starts the
# counter at a random point in the lower half, so a restarted simulator does not hand out
# ids that the product already holds for earlier messages of the same carrier.
_ID_BITS = 40
_START_BITS = _ID_BITS - 1
# Widest decimal rendering of a 40-bit id: receipts in decimal are zero-padded to it, as the
# carriers with this quirk do (opentelecoms-org/jsmpp#178).
_DECIMAL_WIDTH = len(str(2**_ID_BITS - 1))


class MessageIds:
    """Issues (submit_sm_resp id, receipt id) pairs, one counter per carrier."""

    __slots__ = ("_id_format", "_next", "_receipt_id_format")

    def __init__(self, id_format: IdFormat, receipt_id_format: ReceiptIdFormat) -> None:
        self._next: dict[str, int] = {}
        self._id_format = id_format
        self._receipt_id_format = receipt_id_format

    def issue(self, carrier: str) -> tuple[str, str]:
        """A fresh id for a message accepted by `carrier`, and how its receipt will quote it."""
        number = self._next.get(carrier)
        if number is None:
            number = secrets.randbits(_START_BITS) + 1
        self._next[carrier] = number + 1
        if self._id_format == "hex":
            message_id = f"{number:010X}"
            if self._receipt_id_format == "decimal":
                return message_id, f"{number:0{_DECIMAL_WIDTH}d}"
            return message_id, message_id
        message_id = str(number)
        return message_id, message_id
