"""SMPP 3.4 numbers the simulator uses, written out from the specification.

The simulator holds its own view of the protocol: it is the outside world, so it shares no
table with the product it checks.
"""

from __future__ import annotations

from typing import Final

# command_id (SMPP 3.4 §5.1.2); a response is its request's id with the top bit set.
RESPONSE: Final = 0x80000000
GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_TRANSMITTER: Final = 0x00000002
SUBMIT_SM: Final = 0x00000004
SUBMIT_SM_RESP: Final = 0x80000004
DELIVER_SM: Final = 0x00000005
DELIVER_SM_RESP: Final = 0x80000005
UNBIND: Final = 0x00000006
UNBIND_RESP: Final = 0x80000006
BIND_TRANSCEIVER: Final = 0x00000009
ENQUIRE_LINK: Final = 0x00000015
ENQUIRE_LINK_RESP: Final = 0x80000015

# command_status (SMPP 3.4 §5.1.3)
ESME_RINVCMDLEN: Final = 0x00000002
ESME_RINVCMDID: Final = 0x00000003
ESME_RINVBNDSTS: Final = 0x00000004
ESME_RALYBND: Final = 0x00000005
ESME_RSYSERR: Final = 0x00000008
ESME_RINVDSTADR: Final = 0x0000000B
ESME_RBINDFAIL: Final = 0x0000000D
ESME_RTHROTTLED: Final = 0x00000058

# Optional parameter tags (SMPP 3.4 §5.3.2)
TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_SAR_MSG_REF_NUM: Final = 0x020C
TLV_SAR_TOTAL_SEGMENTS: Final = 0x020E
TLV_SAR_SEGMENT_SEQNUM: Final = 0x020F
TLV_SC_INTERFACE_VERSION: Final = 0x0210
TLV_NETWORK_ERROR_CODE: Final = 0x0423
TLV_MESSAGE_PAYLOAD: Final = 0x0424
TLV_MESSAGE_STATE: Final = 0x0427

INTERFACE_VERSION: Final = 0x34

# esm_class (§5.2.12): UDH indicator on submit; message type "delivery receipt" on deliver.
ESM_UDHI: Final = 0x40
ESM_DELIVERY_RECEIPT: Final = 0x04
