"""deliver_sm from the SMSC: a receipt is answered only once it is stored (SMPP 3.4 §4.6)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from services.sender.carriers import wire
from services.sender.carriers.base import ReceiptCallback
from services.sender.carriers.connection import SmppConnection
from services.sender.receipts import ESM_CLASS_DELIVERY_RECEIPT, ESM_CLASS_TYPE_MASK, parse_receipt


def answer_deliver_sm(
    connection: SmppConnection,
    sequence: int,
    body: bytes,
    on_receipt: ReceiptCallback,
    log: Any,
) -> None:
    """Hand a deliver_sm's receipt to `on_receipt` and answer the SMSC once it is stored:
    until then the carrier keeps it, so a receipt in memory when the process dies is
    delivered again rather than lost. What is not a receipt of ours is answered at once."""

    def answer(status: int) -> None:
        connection.respond(wire.DELIVER_SM | wire.RESPONSE, sequence, b"\0", status)

    try:
        pdu = wire.deliver_sm(body)
        receipt = parse_receipt(pdu.esm_class, pdu.source_addr, pdu.short_message, pdu.tlvs)
    except Exception as error:  # noqa: BLE001 - a PDU we cannot read is still answered
        log.warning("smpp.deliver_undecodable", error=repr(error))
        answer(0)
        return
    if receipt is None:
        if pdu.esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_DELIVERY_RECEIPT:
            log.warning("smpp.receipt_unparsed", raw=pdu.short_message[:200])
        answer(0)  # a mobile-originated message: not ours to keep
        return
    try:
        stored = on_receipt(receipt)
    except Exception:
        log.exception("smpp.receipt_callback_failed")
        answer(wire.ESME_RX_T_APPN)
        return
    if not isinstance(stored, Awaitable):
        answer(0)
        return

    def done(future: asyncio.Future[object]) -> None:
        failed = future.cancelled() or future.exception() is not None
        answer(wire.ESME_RX_T_APPN if failed else 0)

    asyncio.ensure_future(stored).add_done_callback(done)
