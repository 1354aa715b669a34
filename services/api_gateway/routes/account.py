"""/api/v1/account: the wallet balance and what a unit costs it now."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import text

from libs.common.db import session_scope
from libs.common.errors import WalletForbidden
from libs.common.pricing import RECENT_UNITS, unit_price
from services.api_gateway.context import AUTH, SESSIONS, SETTINGS
from services.api_gateway.openapi import operation
from services.api_gateway.schemas import BalanceResponse, WalletQuery
from services.api_gateway.web import json_response, query

routes = web.RouteTableDef()


@routes.get("/api/v1/account/balance")
@operation(
    "Read a wallet's balance",
    query=WalletQuery,
    responses={200: BalanceResponse},
    errors=(401, 403, 422, 429),
)
async def balance(request: web.Request) -> web.Response:
    params = query(request, WalletQuery)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    async with session_scope(request.app[SESSIONS]) as session:
        row = (
            await session.execute(
                text(
                    f"SELECT w.balance, w.price_per_unit, {RECENT_UNITS}"
                    " FROM wallets w WHERE w.id = :w"
                ),
                {"w": params.walletId, "day": datetime.now(UTC).date()},
            )
        ).one_or_none()
    if row is None:
        raise WalletForbidden()
    return json_response(
        {
            "walletId": params.walletId,
            "balance": row[0],
            "currency": "UGX",
            "costPerSms": unit_price(request.app[SETTINGS], row[1], row[2]),
        }
    )
