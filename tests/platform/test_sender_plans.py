"""The sender's outcome writes stay index probes when the statistics are stale.

A platform's statistics say nearly every message is delivered; a campaign then makes tens
of thousands of queued ones before autoanalyze runs. Planned from those statistics, the
update that stores submits joined every queued message with every id it was given.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import create_engine, create_sessionmaker, session_scope, transaction
from libs.common.settings import CommonSettings
from services.sender import store
from services.sender.receipts import Receipt
from services.sender.store import INDEX_PLANS, ReceiptUpdate
from services.sender.store.receipts import _APPLY_SINGLES
from tests.infra import Servers, seeded_database

_STALE = """
INSERT INTO accounts (id, phone) VALUES ('acc_p', '+256772000300');
INSERT INTO wallets (id, account_id) VALUES ('wal_p', 'acc_p');
INSERT INTO batches (id, wallet_id, message, encoding, priority, recipients, units, cost,
                     unit_price)
     VALUES ('bat_p', 'wal_p', 'Past and present', 'GSM-7', 'normal', 1, 1, 35, 35);
INSERT INTO messages (id, batch_id, wallet_id, recipient, carrier, units, cost, status,
                      parts_done, expires_at, created_at, updated_at)
SELECT 'msg_old' || g, 'bat_p', 'wal_p', '+25677' || lpad(g::text, 7, '0'), 'mtn', 1, 35,
       'delivered', 1, now(), now(), now()
  FROM generate_series(1, 20000) g;
ANALYZE messages;
INSERT INTO messages (id, batch_id, wallet_id, recipient, carrier, units, cost, status,
                      parts_done, expires_at, created_at, updated_at)
SELECT 'msg_new' || g, 'bat_p', 'wal_p', '+25670' || lpad(g::text, 7, '0'), 'airtel', 1, 35,
       'queued', 0, now() + interval '1 day', now(), now()
  FROM generate_series(1, 60000) g;
"""


@pytest.fixture
async def stale_database(test_servers: Servers, template_database: str) -> AsyncIterator[str]:
    async with seeded_database(
        test_servers.database_url, template_database, "wesendall_test_plans_", _STALE
    ) as url:
        yield url


async def _plan(session: AsyncSession, statement: str, ids: list[str]) -> str:
    rows = await session.execute(text("EXPLAIN " + statement), {"ids": ids, "was": ["queued"]})
    return "\n".join(row[0] for row in rows)


async def test_storing_submits_probes_the_primary_key_despite_stale_statistics(
    stale_database: str,
) -> None:
    ids = [f"msg_new{n}" for n in range(1000, 1800)]
    statement = (
        "UPDATE messages m SET status = 'sent' FROM unnest(CAST(:ids AS text[])) AS u(id)"
        " WHERE m.id = u.id AND m.status = ANY(CAST(:was AS text[]))"
    )
    for server_settings, expected in ((None, "Seq Scan on messages"), (INDEX_PLANS, "pk_messages")):
        engine = create_engine(
            CommonSettings(database_url=stale_database), "plans", server_settings
        )
        try:
            sessions = create_sessionmaker(engine)
            async with session_scope(sessions) as session:
                plan = await _plan(session, statement, ids)
            # The statement the sender runs, through its own connection settings.
            if server_settings is INDEX_PLANS:
                now = time.time()
                async with transaction(sessions) as connection:
                    changed = await store.mark_sent(connection, [(i, "C" + i, now) for i in ids])
                assert len(changed) == len(ids)
        finally:
            await engine.dispose()
        # Without the setting the stale plan shows (the trap is real in this database);
        # with it, every id is an index probe.
        assert expected in plan, plan


async def test_applying_receipts_probes_the_primary_key_despite_stale_statistics(
    stale_database: str,
) -> None:
    """The statement that matches receipts through `message_refs` and applies them."""
    ids = [f"msg_new{n}" for n in range(2000, 2800)]
    receipts = [
        ReceiptUpdate(
            "airtel",
            Receipt(
                carrier_message_id="C" + i,
                state="DELIVRD",
                error_code=None,
                recipient=None,
                submit_date=None,
                done_date=None,
                text=None,
                raw=b"",
            ),
            "delivered",
        )
        for i in ids
    ]
    engine = create_engine(CommonSettings(database_url=stale_database), "plans", INDEX_PLANS)
    try:
        sessions = create_sessionmaker(engine)
        async with transaction(sessions) as connection:
            await store.mark_sent(connection, [(i, "C" + i, time.time()) for i in ids])
        async with transaction(sessions) as connection:
            keys = [("airtel", "C" + i, n) for n, i in enumerate(ids)]
            plan = "\n".join(
                row[0]
                for row in await connection.fetch(
                    "EXPLAIN " + _APPLY_SINGLES,
                    *[list(column) for column in zip(*keys, strict=True)],
                    ["delivered"] * len(ids),
                    [None] * len(ids),
                )
            )
            changed, unmatched = await store.apply_receipts(connection, receipts)
    finally:
        await engine.dispose()
    assert "pk_messages" in plan and "Seq Scan on messages" not in plan, plan
    assert (len(changed), unmatched) == (len(ids), [])
    assert {c.status for c in changed} == {"delivered"}
