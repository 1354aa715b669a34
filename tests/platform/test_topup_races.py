"""Deposits acted on by many at once, and a payment the provider reports too late."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
from sqlalchemy import text

from libs.common.amqp import Topology
from libs.common.db import session_scope
from libs.common.events import decode_events
from libs.common.mobile_money import MtnSettings, callback_token
from services.billing.mobile_money import create_providers
from services.billing.mobile_money.base import Collection, Outcome
from services.billing.settings import BillingSettings
from services.billing.topups import TopUps
from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform


def _billing_settings(platform: Platform) -> BillingSettings:
    """Billing's settings for this platform, as its billing process has them."""
    return BillingSettings(
        database_url=platform.config.database_url,
        mobile_money={"mtn": MtnSettings(base_url=platform.config.mobile_money_url)},
    )


async def test_twenty_callback_checks_and_the_reconciler_at_once_credit_one_deposit(
    platform: Platform, customer: Customer
) -> None:
    settings = _billing_settings(platform)
    providers = create_providers(settings.mobile_money)
    topups = TopUps(
        platform.sessions, settings, Topology(platform.config.amqp_namespace), providers, []
    )
    deposit_id, reference = f"dep_race{uuid.uuid4().hex}", str(uuid.uuid4())
    connection = await aio_pika.connect(platform.config.amqp_url)
    events = await (await connection.channel()).declare_queue(exclusive=True)
    await events.bind(f"{platform.config.amqp_namespace}events", "deposit.*")
    # A deposit the platform's own billing leaves alone for now (next check an hour away),
    # whose payer has approved at the provider.
    async with session_scope(platform.sessions) as session:
        await session.execute(
            text(
                "INSERT INTO deposits (id, wallet_id, provider, phone_number, amount,"
                " provider_reference, initiated_at, expires_at, next_check_at)"
                " VALUES (:id, :w, 'mtn', '+256772126000', 4000, :ref, now(),"
                "  now() + interval '1 hour', now() + interval '1 hour')"
            ),
            {"id": deposit_id, "w": customer.wallet_id, "ref": reference},
        )
    try:
        await providers["mtn"].initiate(
            Collection(reference, deposit_id, "+256772126000", 4000), "http://127.0.0.1:9/none"
        )

        async def approved() -> bool:
            return (await providers["mtn"].status(reference)).outcome is Outcome.SUCCESSFUL

        await eventually(approved)
        opening = await customer.balance()
        await platform.scalar(
            "UPDATE deposits SET next_check_at = now() WHERE id = :d RETURNING id", d=deposit_id
        )
        await asyncio.gather(
            *(topups.check(deposit_id, why="callback") for _ in range(20)),
            topups.reconcile_once(),
            topups.reconcile_once(),
        )
    finally:
        await topups.close()
    credits = await platform.scalar(
        "SELECT count(*) FROM ledger_entries WHERE kind = 'deposit' AND reference = :d",
        d=deposit_id,
    )
    assert credits == 1
    assert await customer.balance() == opening + 4000
    assert (await customer.deposit(deposit_id)).body["status"] == "successful"
    await asyncio.sleep(1)  # the relay publishes within milliseconds; give a duplicate time
    announced = []
    while (message := await events.get(no_ack=True, fail=False)) is not None:
        announced += [e for e in decode_events(message.body) if e.data["depositId"] == deposit_id]
    await connection.close()
    assert [e.type for e in announced] == ["deposit.succeeded"]
    assert await platform.ledger_mismatches() == []


async def test_a_payment_reported_after_expiry_is_flagged_not_credited(
    platform: Platform, customer: Customer
) -> None:
    settings = _billing_settings(platform)
    providers = create_providers(settings.mobile_money)
    mtn = providers["mtn"]
    deposit_id, reference = f"dep_late{uuid.uuid4().hex}", str(uuid.uuid4())
    try:
        await mtn.initiate(
            Collection(reference, deposit_id, "+256772126100", 3000), "http://127.0.0.1:9/none"
        )

        async def approved() -> bool:
            return (await mtn.status(reference)).outcome is Outcome.SUCCESSFUL

        await eventually(approved)
    finally:
        for provider in providers.values():
            await provider.close()
    # As if the payer approved only after the deposit had expired here.
    async with session_scope(platform.sessions) as session:
        await session.execute(
            text(
                "INSERT INTO deposits (id, wallet_id, provider, phone_number, amount,"
                " provider_reference, status, failure_reason, initiated_at, completed_at,"
                " expires_at, next_check_at)"
                " VALUES (:id, :w, 'mtn', '+256772126100', 3000, :ref, 'expired',"
                "  'not_approved', now(), now(), now(), now())"
            ),
            {"id": deposit_id, "w": customer.wallet_id, "ref": reference},
        )
    opening = await customer.balance()
    token = callback_token(settings.mobile_money.callback_secret, deposit_id)
    reply = await customer.request(
        "PUT", f"/callbacks/mtn/{deposit_id}/{token}", json={"status": "SUCCESSFUL"}, auth=False
    )
    assert reply.status == 200

    async def flagged() -> bool:
        log = (platform.logs / "billing.log").read_text()
        return any(
            '"deposit.paid_after_expiry"' in line and deposit_id in line
            for line in log.splitlines()
        )

    await eventually(flagged)
    assert await customer.balance() == opening
    assert (await customer.deposit(deposit_id)).body["status"] == "expired"
