"""SMPP 3.4 numbers the simulator uses, written out from the specification.

smpp34 also exports these, but only as attributes set at import time, which type checkers
cannot see; and the simulator is meant to hold its own view of the protocol anyway.
"""

from __future__ import annotations

from typing import Final

# command_status (SMPP 3.4 §5.1.3)
ESME_RSYSERR: Final = 0x00000008
ESME_RINVDSTADR: Final = 0x0000000B
ESME_RTHROTTLED: Final = 0x00000058

# Optional parameter tags (SMPP 3.4 §5.3.2)
TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_SAR_MSG_REF_NUM: Final = 0x020C
TLV_SAR_TOTAL_SEGMENTS: Final = 0x020E
TLV_SAR_SEGMENT_SEQNUM: Final = 0x020F
TLV_NETWORK_ERROR_CODE: Final = 0x0423
TLV_MESSAGE_PAYLOAD: Final = 0x0424
TLV_MESSAGE_STATE: Final = 0x0427

# esm_class (§5.2.12): UDH indicator on submit; message type "delivery receipt" on deliver.
ESM_UDHI: Final = 0x40
ESM_DELIVERY_RECEIPT: Final = 0x04
