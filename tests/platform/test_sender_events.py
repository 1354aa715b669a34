"""The events the sender stages for the status changes it writes: one per change, in the
shape of `libs.common.events.Event`, a message's `sent` before its final status, one
outbox row routed under each type it holds, and nothing for a change replayed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.amqp import Topology
from libs.common.db import Connection, create_engine, create_sessionmaker, transaction
from libs.common.events import CC, Event
from libs.common.outbox import Staged
from libs.common.settings import CommonSettings
from services.sender import store
from services.sender.events import stage_status_events
from services.sender.receipts import Receipt
from services.sender.store import Changed, ReceiptUpdate
from tests.infra import Servers, seeded_database

_SEEDED = """
INSERT INTO accounts (id, phone) VALUES ('acc_e', '+256772000500');
INSERT INTO wallets (id, account_id) VALUES ('wal_e', 'acc_e');
INSERT INTO batches (id, wallet_id, message, encoding, priority, recipients, units, cost,
                     unit_price, request_id)
     VALUES ('bat_e', 'wal_e', 'Hello', 'GSM-7', 'normal', 4, 5, 175, 35, 'req_e');
INSERT INTO messages (id, batch_id, wallet_id, recipient, carrier, units, cost, status,
                      parts_done, expires_at)
     SELECT id, 'bat_e', 'wal_e', recipient, 'mtn', units, 35 * units, 'queued', 0,
            now() + interval '1 hour'
       FROM (VALUES ('msg_a', '+256772000501', 1), ('msg_b', '+256772000502', 1),
                    ('msg_c', '+256772000503', 2), ('msg_d', '+256772000504', 1))
            AS m(id, recipient, units);
"""


_RECIPIENTS = {f"msg_{name}": f"+25677200050{n}" for n, name in enumerate("abcd", start=1)}


@pytest.fixture
async def sessions(
    test_servers: Servers, template_database: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with seeded_database(
        test_servers.database_url, template_database, "wesendall_test_events_", _SEEDED
    ) as url:
        engine = create_engine(CommonSettings(database_url=url), "events-test")
        yield create_sessionmaker(engine)
        await engine.dispose()


def _receipt(cid: str, status: str, state: str, code: str | None = None) -> ReceiptUpdate:
    receipt = Receipt(
        carrier_message_id=cid,
        state=state,
        error_code=code,
        recipient="256772000501",
        submit_date=None,
        done_date=None,
        text=None,
        raw=b"id:" + cid.encode(),
    )
    return ReceiptUpdate("mtn", receipt, status)


def _event(message: str, status: str, units: int = 1, **data: Any) -> dict[str, Any]:
    """What the event of `message` reaching `status` says, but its time."""
    kind = "message." + status
    return {
        "id": f"evt_{message.removeprefix('msg_')}.{status}",
        "type": kind,
        "version": 1,
        "request_id": "req_e",
        "data": {
            "message_id": message,
            "batch_id": "bat_e",
            "wallet_id": "wal_e",
            "recipient": _RECIPIENTS[message],
            "status": status,
            "error_code": None,
            "units": units,
            "cost": 35 * units,
            "carrier": "mtn",
            "carrier_message_id": None,
            **data,
        },
    }


async def _announce(connection: Connection, changed: list[Changed]) -> list[Staged]:
    return await stage_status_events(connection, Topology(), changed)


def _events(staged: list[Staged]) -> list[dict[str, Any]]:
    """The events of the one staged row, each checked against the envelope model, without
    times, sorted by id once each message's are seen to be in the order they happened."""
    [row] = staged
    events: list[dict[str, Any]] = orjson.loads(row.body)
    for event in events:
        Event.model_validate(event)
        assert datetime.fromisoformat(event.pop("occurred_at")).tzinfo is not None
    for message in {event["data"]["message_id"] for event in events}:
        statuses = [e["data"]["status"] for e in events if e["data"]["message_id"] == message]
        assert "sent" not in statuses[1:], statuses
    return sorted(events, key=lambda event: event["id"])


async def test_a_write_announces_each_change_once_and_a_sent_before_its_final_status(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = time.time()
    async with transaction(sessions) as connection:
        # msg_b's receipt came before its submit was written: sent, then delivered.
        sent = await store.mark_sent(
            connection,
            [("msg_a", "A1", now), ("msg_b", "B1", now)],
            [("sent", None), ("delivered", None)],
        )
        staged = await _announce(connection, sent)
        submitted = await connection.fetchval(
            "SELECT submitted_at FROM messages WHERE id = 'msg_a'"
        )
    # The carrier's time, to the microsecond.
    assert abs(submitted - datetime.fromtimestamp(now, UTC)) < timedelta(microseconds=2)
    assert _events(staged) == [
        _event("msg_a", "sent", carrier_message_id="A1"),
        _event("msg_b", "delivered", carrier_message_id="B1"),
        _event("msg_b", "sent", carrier_message_id="B1"),
    ]
    # One outbox row, routed under each type it holds.
    [row] = staged
    assert (row.routing_key, row.headers) == ("message.sent", {CC: ["message.delivered"]})

    async with transaction(sessions) as connection:
        again = await store.mark_sent(connection, [("msg_a", "A1", now)])
        assert again == []
        assert await _announce(connection, again) == []


async def test_receipts_announce_final_statuses_with_their_error_codes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = time.time()
    # What a carrier says goes into the events escaped, whatever it holds.
    odd = 'A"1\\'
    async with transaction(sessions) as connection:
        await store.mark_sent(connection, [("msg_a", odd, now), ("msg_c", "C1", now)])
        await store.insert_parts(connection, [("msg_c", 1, "mtn", "C1"), ("msg_c", 2, "mtn", "C2")])
    receipts = [
        _receipt(odd, "undelivered", "UNDELIV", '0"7'),
        _receipt("C1", "delivered", "DELIVRD"),
        _receipt("C2", "undelivered", "EXPIRED", "001"),
        _receipt("Z9", "delivered", "DELIVRD"),  # no such submit (yet)
    ]
    async with transaction(sessions) as connection:
        changes, unmatched = await store.apply_receipts(connection, receipts)
        staged = await _announce(connection, changes)
    assert unmatched == [receipts[3]]
    assert _events(staged) == [
        _event("msg_a", "undelivered", error_code='UNDELIV:0"7', carrier_message_id=odd),
        _event("msg_c", "undelivered", units=2, error_code="EXPIRED:001", carrier_message_id="C1"),
    ]
    async with transaction(sessions) as connection:
        stored = await connection.fetch(
            "SELECT id, status, error_code FROM messages WHERE id IN ('msg_a', 'msg_c') ORDER BY id"
        )
        replayed, _ = await store.apply_receipts(connection, receipts[:3])
    assert [tuple(row) for row in stored] == [
        ("msg_a", "undelivered", 'UNDELIV:0"7'),
        ("msg_c", "undelivered", "EXPIRED:001"),
    ]
    assert replayed == []


async def test_never_sent_messages_announce_failed_and_expired(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as connection:
        changes = await store.mark_unsent(
            connection, [("msg_a", "failed", "ESME_RINVDSTADR"), ("msg_d", "expired", None)]
        )
        staged = await _announce(connection, changes)
    assert _events(staged) == [
        _event("msg_a", "failed", error_code="ESME_RINVDSTADR"),
        _event("msg_d", "expired"),
    ]
    assert [(row.routing_key, row.headers) for row in staged] == [
        ("message.failed", {CC: ["message.expired"]})
    ]
