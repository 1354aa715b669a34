"""The rows an admission writes: the charge statement (the debit, the day's usage, the
ledger, the batches and, for a small admission, its messages, with the send jobs staged)
and, for a large one, its messages by COPY.
"""

from __future__ import annotations

import functools
import io
import itertools
import re
from collections.abc import Sequence
from typing import Any

from libs.common.admission.accepted import Accepted, AcceptedMessage, validity
from libs.common.admission.jobs import send_jobs
from libs.common.admission.settings import AdmissionSettings
from libs.common.amqp import Topology
from libs.common.db import Connection, fetch_named
from libs.common.models import MessageStatus
from libs.common.outbox import Staged, stage_parameters, stage_sql, staged_rows
from libs.common.pricing import RECENT_UNITS

MESSAGE_COLUMNS = (
    "id",
    "batch_id",
    "wallet_id",
    "recipient",
    "carrier",
    "units",
    "cost",
    "status",
    "parts_done",
    "expires_at",
    "created_at",
    "updated_at",
)

# The debit, the day's usage, one charge per batch in the ledger and the batch rows, in one
# round trip; with them, when asked, the message rows of a small admission and the staged
# send jobs (`_charge`). The debit is conditional: the wallet must hold the total, and its
# price must still be the quote's (the same negotiated price, 30-day units in the band).
# Under the lock both hold by construction; without it (`charge._admit_at_quote`) they
# are the whole check, made on the row as the debit locks it (its 30-day units as of the
# statement's start: an admission that waits for the one crossing a tier pays the price
# from before it). The other rows are written only FROM the debit, so a refused debit
# writes nothing.
_CHARGE_CTES = f"""
    WITH debit AS (
        UPDATE wallets w SET balance = w.balance - :total
         WHERE w.id = :wallet_id AND w.balance >= :total
           AND w.price_per_unit IS NOT DISTINCT FROM CAST(:negotiated AS int)
           AND {RECENT_UNITS} BETWEEN :units_from AND :units_to
        RETURNING w.balance
    ), usage AS (
        INSERT INTO wallet_usage_daily (wallet_id, day, units)
        SELECT :wallet_id, :day, :units FROM debit
        ON CONFLICT (wallet_id, day)
        DO UPDATE SET units = wallet_usage_daily.units + EXCLUDED.units
    ), charges AS (
        INSERT INTO ledger_entries (wallet_id, kind, amount, balance_after, batch_id, description)
        SELECT :wallet_id, 'charge', -c.cost, d.balance + :total - c.spent, c.id, c.description
          FROM debit d, unnest(CAST(:ids AS text[]), CAST(:costs AS bigint[]),
                               CAST(:spent AS bigint[]), CAST(:descriptions AS text[]))
               AS c(id, cost, spent, description)
    ), batches AS (
        INSERT INTO batches (id, wallet_id, api_key_id, group_id, message, encoding, priority,
                             recipients, units, cost, unit_price, request_id, created_at)
        SELECT b.id, :wallet_id, b.key, b.grp, b.message, b.encoding, b.priority, b.count,
               b.units, b.cost, :price, b.request, :now
          FROM debit, unnest(CAST(:ids AS text[]), CAST(:keys AS text[]),
                             CAST(:groups AS text[]), CAST(:messages AS text[]),
                             CAST(:encodings AS text[]), CAST(:priorities AS text[]),
                             CAST(:counts AS int[]), CAST(:batch_units AS bigint[]),
                             CAST(:costs AS bigint[]), CAST(:requests AS text[]))
               AS b(id, key, grp, message, encoding, priority, count, units, cost, request)
    )"""
# The foreign key from a message to its batch is checked at the end of the statement,
# when the batch row of the sibling CTE is there.
_MESSAGES_CTE = """, new_messages AS (
        INSERT INTO messages (id, batch_id, wallet_id, recipient, carrier, units, cost,
                              status, parts_done, expires_at, created_at, updated_at)
        SELECT m.id, m.batch, :wallet_id, m.recipient, m.carrier, m.units, m.cost,
               'queued', 0, m.expires, :now, :now
          FROM debit, unnest(CAST(:m_ids AS text[]), CAST(:m_batches AS text[]),
                             CAST(:m_recipients AS text[]), CAST(:m_carriers AS text[]),
                             CAST(:m_units AS smallint[]), CAST(:m_costs AS int[]),
                             CAST(:m_expires AS timestamptz[]))
               AS m(id, batch, recipient, carrier, units, cost, expires)
    )"""
# Admissions of up to this many messages write them in the charge's statement; larger ones
# COPY them afterwards, which costs round trips but less per row.
INLINE_MESSAGES = 100


@functools.cache
def _charge(*, inline_messages: bool) -> str:
    """The charge statement: the new balance and the (id, message_id) of each staged send
    job, a row each (the balance repeated)."""
    sql = _CHARGE_CTES + (_MESSAGES_CTE if inline_messages else "")
    sql += f", jobs AS ({stage_sql('debit, ')})"
    return sql + " SELECT d.balance, j.id, j.message_id FROM debit d LEFT JOIN jobs j ON true"


async def write(
    connection: Connection,
    settings: AdmissionSettings,
    topology: Topology,
    accepted: Accepted,
    staged: list[Staged],
) -> int | None:
    """Write what `accepted` charges; the wallet's balance after the debit, or None (and
    nothing written or staged) when the debit was refused."""
    admissions = [a for a, _ in accepted.admissions]
    costs = [cost for _, cost in accepted.admissions]
    spent = list(itertools.accumulate(costs))
    messages = list(accepted.messages(settings))
    inline = len(messages) <= INLINE_MESSAGES
    if not inline and not connection.is_in_transaction():
        # The charge would commit on its own before its messages were COPYed.
        raise RuntimeError("an admission whose messages are COPYed needs a transaction")
    jobs = send_jobs(settings, topology, accepted, messages)
    price = accepted.quote
    parameters: dict[str, Any] = {
        "wallet_id": accepted.wallet_id,
        "total": spent[-1],
        "negotiated": price.negotiated,
        "units_from": price.units_from,
        "units_to": price.units_to,
        "day": accepted.now.date(),
        "units": sum(a.units * len(a.recipients) for a in admissions),
        "now": accepted.now,
        "price": price.price,
        "ids": [a.batch_id for a in admissions],
        "costs": costs,
        "spent": spent,
        "descriptions": [f"{len(a.recipients)} recipients x {a.units} units" for a in admissions],
        "keys": [a.api_key_id for a in admissions],
        "groups": [a.group_id for a in admissions],
        "messages": [a.message for a in admissions],
        "encodings": [a.encoding for a in admissions],
        "priorities": [a.priority for a in admissions],
        "counts": [len(a.recipients) for a in admissions],
        "batch_units": [a.units * len(a.recipients) for a in admissions],
        "requests": [a.request_id for a in admissions],
    }
    if inline:
        parameters |= _message_columns(settings, accepted, messages)
    parameters |= stage_parameters(jobs)
    rows = await fetch_named(connection, _charge(inline_messages=inline), parameters)
    if not rows:
        return None
    if not inline:
        await _copy_messages(connection, settings, accepted, messages)
    staged += staged_rows(jobs, [(row[1], row[2]) for row in rows])
    return int(rows[0][0])


def _message_columns(
    settings: AdmissionSettings, accepted: Accepted, messages: Sequence[AcceptedMessage]
) -> dict[str, list[Any]]:
    """What differs between the new message rows, a list per column, by the charge
    statement's parameter names (in this order: id, batch, recipient, carrier, units, cost,
    expiry). The rest of each row (wallet, status, times) is the admission's."""
    expiry = {lane: accepted.now + validity(settings, lane) for lane in ("priority", "bulk")}
    return {
        "m_ids": [m.message_id for m in messages],
        "m_batches": [m.admission.batch_id for m in messages],
        "m_recipients": [m.recipient for m in messages],
        "m_carriers": [m.carrier for m in messages],
        "m_units": [m.admission.units for m in messages],
        "m_costs": [m.cost for m in messages],
        "m_expires": [expiry[m.lane] for m in messages],
    }


# COPY's text format: these characters in a value are written escaped.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_texts(values: list[str]) -> list[str]:
    """`values` as COPY's text format writes them: escaped only when one needs it (ids,
    E.164 numbers and carrier names never do), so the usual check is one scan."""
    if _COPY_SPECIAL.search("".join(values)) is None:
        return values
    return [value.translate(_COPY_ESCAPES) for value in values]


async def _copy_messages(
    connection: Connection,
    settings: AdmissionSettings,
    accepted: Accepted,
    messages: Sequence[AcceptedMessage],
) -> None:
    """COPY the message rows of a large admission: the write that grows with its recipients.

    In COPY's text format: asyncpg's binary rows encode each row's three times from
    datetimes, which took two thirds of the CPU of a 1,000-row COPY (3.7 ms, against 1.2 ms
    as text), and Postgres reads the text no slower.
    """
    columns = _message_columns(settings, accepted, messages)
    now = accepted.now.isoformat()
    # One expiry per lane: each is formatted once.
    expiry = {expires: expires.isoformat() for expires in set(columns["m_expires"])}
    wallet_id = copy_texts([accepted.wallet_id])[0]
    fixed = f"\t{wallet_id}\t"
    tail = f"\t{MessageStatus.QUEUED.value}\t0\t"
    rows = "".join(
        f"{id_}\t{batch}{fixed}{recipient}\t{carrier}\t{units}\t{cost}{tail}"
        f"{expiry[expires]}\t{now}\t{now}\n"
        for id_, batch, recipient, carrier, units, cost, expires in zip(
            copy_texts(columns["m_ids"]),
            copy_texts(columns["m_batches"]),
            copy_texts(columns["m_recipients"]),
            copy_texts(columns["m_carriers"]),
            columns["m_units"],
            columns["m_costs"],
            columns["m_expires"],
            strict=True,
        )
    )
    await connection.copy_to_table(
        "messages", source=io.BytesIO(rows.encode()), columns=MESSAGE_COLUMNS, format="text"
    )
