"""/api/v1/account: Mobile Money top-ups and the wallet statement."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from libs.common.db import session_scope
from libs.common.errors import InternalError, NotFound, ValidationFailed, WalletForbidden
from libs.common.ids import new_id
from libs.common.mobile_money import (
    PROVIDER_FOR_OPERATOR,
    PROVIDER_NAMES,
    StartDeposit,
    deposit_view,
)
from libs.common.phones import Recipient, normalise
from services.api_gateway.context import AUTH, PREFIXES, SESSIONS, TOPUPS
from services.api_gateway.idempotency import idempotently
from services.api_gateway.money_schemas import (
    DepositQuery,
    DepositResponse,
    TopUpRequest,
    TransactionsQuery,
    TransactionsResponse,
)
from services.api_gateway.openapi import operation
from services.api_gateway.web import json_response, query, read_json, validate

routes = web.RouteTableDef()


def payer(request: web.Request, raw: str) -> Recipient:
    """The payer's number in E.164 with the operator whose Mobile Money collects from it."""
    table = request.app[PREFIXES]
    found = normalise(raw, table, table.operators)
    if isinstance(found, Recipient) and found.operator in PROVIDER_FOR_OPERATOR:
        return found
    if isinstance(found, Recipient):
        providers = " or ".join(PROVIDER_NAMES.values())
        reason, message = (
            "no_provider",
            f"Top-ups are collected through {providers}; "
            f"{table.display_name(found.operator)} numbers cannot pay.",
        )
    else:
        reason, message = found.reason, found.message
    raise ValidationFailed(
        "The phone number cannot pay a top-up.",
        details=[{"field": "phone_number", "input": raw, "reason": reason, "message": message}],
    )


@routes.post("/api/v1/account/topup")
@operation(
    "Top up a wallet from an MTN MoMo or Airtel Money account",
    request=TopUpRequest,
    responses={202: DepositResponse},
    errors=(401, 403, 409, 422, 429, 500, 502),
)
async def topup(request: web.Request) -> web.Response:
    principal = request["principal"]
    payload = await read_json(request)
    body = validate(TopUpRequest, payload)
    await request.app[AUTH].authorize_wallet(principal, body.walletId)
    number = payer(request, body.phone_number)

    async def produce(deposit_id: str) -> web.Response:
        reply = await request.app[TOPUPS].start(
            StartDeposit(
                deposit_id=deposit_id,
                wallet_id=body.walletId,
                amount=body.amount,
                phone_number=number.e164,
                provider=PROVIDER_FOR_OPERATOR[number.operator],
                description=body.description,
                request_id=request.get("request_id"),
                deadline=0,
            )
        )
        if reply.error == "wallet_not_found":
            raise WalletForbidden()
        if not reply.ok or reply.deposit is None:
            raise InternalError()
        return json_response(reply.deposit, status=202)

    return await idempotently(request, payload, new_id("dep"), produce)


@routes.get("/api/v1/account/topup/{depositId}")
@operation(
    "Read a top-up",
    query=DepositQuery,
    responses={200: DepositResponse},
    errors=(401, 403, 404, 422, 429),
)
async def read_topup(request: web.Request) -> web.Response:
    params = query(request, DepositQuery)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    deposit_id = request.match_info["depositId"]
    async with session_scope(request.app[SESSIONS]) as session:
        row = (
            (
                await session.execute(
                    text("SELECT * FROM deposits WHERE id = :id AND wallet_id = :w"),
                    {"id": deposit_id, "w": params.walletId},
                )
            )
            .mappings()
            .one_or_none()
        )
    if row is None:
        raise NotFound(f"Deposit {deposit_id} not found.")
    return json_response(deposit_view(row))


@routes.get("/api/v1/account/transactions")
@operation(
    "The wallet statement: every charge, refund, deposit and adjustment, newest first",
    query=TransactionsQuery,
    responses={200: TransactionsResponse},
    errors=(401, 403, 422, 429),
)
async def transactions(request: web.Request) -> web.Response:
    params = query(request, TransactionsQuery)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    binds = {
        "w": params.walletId,
        "limit": params.per_page,
        "offset": (params.page - 1) * params.per_page,
    }
    async with session_scope(request.app[SESSIONS]) as session:
        total = await session.scalar(
            text("SELECT count(*) FROM ledger_entries WHERE wallet_id = :w"), binds
        )
        rows = (
            await session.execute(
                text(
                    "SELECT id, kind, amount, balance_after, batch_id, message_id, reference,"
                    " description, created_at FROM ledger_entries WHERE wallet_id = :w"
                    " ORDER BY id DESC LIMIT :limit OFFSET :offset"
                ),
                binds,
            )
        ).all()
    data = [
        {
            "id": r.id,
            "type": r.kind,
            "amount": r.amount,
            "balanceAfter": r.balance_after,
            "currency": "UGX",
            "batchId": r.batch_id,
            "messageId": r.message_id,
            "depositId": r.reference if r.kind == "deposit" else None,
            "reference": r.reference,
            "description": r.description,
            "createdAt": r.created_at.isoformat(),
        }
        for r in rows
    ]
    return json_response(
        {"data": data, "page": params.page, "per_page": params.per_page, "total": total}
    )
