"""From validated send request to its admission and the 202 reply, idempotently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from libs.common import ids
from libs.common.admission import Admission, AdmitResult
from libs.common.errors import (
    DomainError,
    InsufficientBalance,
    InternalError,
    ValidationFailed,
    WalletForbidden,
)
from libs.common.phones import BadRecipient, Recipient
from libs.common.segments import Segmentation
from services.api_gateway import idempotency
from services.api_gateway.auth import Principal
from services.api_gateway.context import ADMISSIONS
from services.api_gateway.web import json_response

MAX_RECIPIENTS = 10_000


@dataclass(frozen=True, slots=True)
class SendPlan:
    wallet_id: str
    message: str
    segmentation: Segmentation
    recipients: Sequence[Recipient]
    priority: str
    group_id: str | None
    list_messages: bool


def reject_bad_recipients(bad: list[BadRecipient]) -> None:
    """422 naming every recipient we cannot deliver to, and why; nothing is charged."""
    if bad:
        raise ValidationFailed(
            f"{len(bad)} recipient(s) are not valid Ugandan mobile numbers we can deliver to.",
            details=[
                {
                    "field": "recipient",
                    "recipient": b.input,
                    "reason": b.reason,
                    "message": b.message,
                }
                for b in bad
            ],
        )


async def admit_and_reply(
    request: web.Request, principal: Principal, payload: Any, plan: SendPlan
) -> web.Response:
    """Admit the send; with an Idempotency-Key, the first outcome is the only one."""

    fresh = ids.batch_id()

    async def admit(batch_id: str) -> web.Response:
        # Another batch id than the fresh one is the first attempt's: it may exist.
        admission = _admission(request, principal, plan, batch_id, retry=batch_id != fresh)
        result = await request.app[ADMISSIONS].admit(admission)
        return json_response(_accepted_body(plan, result), status=202)

    return await idempotency.idempotently(request, payload, fresh, admit)


def _admission(
    request: web.Request, principal: Principal, plan: SendPlan, batch_id: str, *, retry: bool
) -> Admission:
    return Admission(
        batch_id=batch_id,
        wallet_id=plan.wallet_id,
        api_key_id=principal.key_id,
        group_id=plan.group_id,
        message=plan.message,
        encoding=plan.segmentation.encoding,
        units=plan.segmentation.units,
        priority=plan.priority,  # type: ignore[arg-type]
        recipients=[r.e164 for r in plan.recipients],
        carriers=[r.operator for r in plan.recipients],
        request_id=request.get("request_id"),
        retry=retry,
    )


def _accepted_body(plan: SendPlan, result: AdmitResult) -> dict[str, Any]:
    if result.error == "insufficient_balance":
        raise InsufficientBalance(
            details={"balance": result.balance, "cost": result.cost, "currency": "UGX"}
        )
    if not result.ok:
        raise _REFUSALS.get(result.error or "", InternalError)()
    units = plan.segmentation.units
    per_message = units * (result.unit_price or 0)
    body: dict[str, Any] = {
        "batchId": result.batch_id,
        "status": "queued",
        "recipients": len(plan.recipients),
        "units": units * len(plan.recipients),
        "cost": result.cost,
        "currency": "UGX",
        "balance": result.balance,
        "encoding": plan.segmentation.encoding,
    }
    if plan.list_messages:
        body["messages"] = [
            {
                "id": mid,
                "recipient": r.e164,
                "units": units,
                "cost": per_message,
                "status": "queued",
            }
            for mid, r in zip(result.message_ids, plan.recipients, strict=True)
        ]
    return body


_REFUSALS: dict[str, type[DomainError]] = {"wallet_not_found": WalletForbidden}
