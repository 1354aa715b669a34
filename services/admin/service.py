"""Operator actions: accounts, keys, prices and credits. The CLI is a thin shell around these."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import ids
from libs.common.amqp import Topology
from libs.common.errors import NotFound, ValidationFailed
from libs.common.events import KEY_REVOKED, Event, encode_events
from libs.common.models import LedgerKind
from libs.common.outbox import BILLING, OutboxMessage, enqueue
from libs.common.phones import PrefixTable, Recipient, normalise
from services.api_gateway.auth import hash_secret
from services.billing.ledger import credit


@dataclass(frozen=True, slots=True)
class Credentials:
    account_id: str
    wallet_id: str
    api_key: str
    api_secret: str

    def as_json(self) -> dict[str, str]:
        return {
            "accountId": self.account_id,
            "walletId": self.wallet_id,
            "apiKey": self.api_key,
            "apiSecret": self.api_secret,
        }


def account_phone(phone: str) -> str:
    """The account holder's number in E.164; any Ugandan mobile operator will do."""
    table = PrefixTable.load()
    found = normalise(phone, table, table.operators)
    if not isinstance(found, Recipient):
        raise ValidationFailed(f"--phone {phone!r}: {found.message}")
    return found.e164


async def create_account(
    session: AsyncSession,
    *,
    phone: str,
    email: str | None,
    credit_ugx: int,
    bcrypt_rounds: int,
    rate_limit: int | None = None,
) -> Credentials:
    """A new account with one wallet (credited if asked) and one API key."""
    account_id, wallet_id = ids.account_id(), ids.wallet_id()
    await session.execute(
        text("INSERT INTO accounts (id, phone, email) VALUES (:id, :phone, :email)"),
        {"id": account_id, "phone": account_phone(phone), "email": email},
    )
    await session.execute(
        text("INSERT INTO wallets (id, account_id, balance) VALUES (:id, :a, 0)"),
        {"id": wallet_id, "a": account_id},
    )
    if credit_ugx:
        await credit(session, wallet_id, credit_ugx, description="opening credit")
    key, secret = await _new_key(session, account_id, bcrypt_rounds, rate_limit)
    return Credentials(account_id, wallet_id, key, secret)


async def create_key(
    session: AsyncSession, *, wallet_id: str, bcrypt_rounds: int, rate_limit: int | None = None
) -> Credentials:
    """Another API key for the account that owns the wallet."""
    account_id = await session.scalar(
        text("SELECT account_id FROM wallets WHERE id = :w"), {"w": wallet_id}
    )
    if account_id is None:
        raise NotFound(f"wallet {wallet_id} not found")
    key, secret = await _new_key(session, account_id, bcrypt_rounds, rate_limit)
    return Credentials(account_id, wallet_id, key, secret)


async def _new_key(
    session: AsyncSession, account_id: str, bcrypt_rounds: int, rate_limit: int | None
) -> tuple[str, str]:
    key, secret = ids.api_key(), ids.api_secret()
    await session.execute(
        text(
            "INSERT INTO api_keys (id, account_id, secret_hash, rate_limit)"
            " VALUES (:id, :a, :h, :r)"
        ),
        {"id": key, "a": account_id, "h": hash_secret(secret, bcrypt_rounds), "r": rate_limit},
    )
    return key, secret


async def revoke_key(session: AsyncSession, topology: Topology, key_id: str) -> None:
    """Revoke a key and announce it, so every gateway evicts it from memory at once."""
    revoked = await session.scalar(
        text(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())"
            " WHERE id = :k RETURNING id"
        ),
        {"k": key_id},
    )
    if revoked is None:
        raise NotFound(f"key {key_id} not found")
    event = Event(type=KEY_REVOKED, data={"key_id": key_id})
    await enqueue(
        session,
        [
            OutboxMessage(
                # Billing's relays publish it if this command cannot reach the broker.
                origin=BILLING,
                exchange=topology.events_exchange,
                routing_key=KEY_REVOKED,
                body=encode_events([event]),
                message_id=event.id,
            )
        ],
    )


async def set_price(session: AsyncSession, wallet_id: str, price: int | None) -> None:
    """A negotiated price per unit for one wallet, or back to the public tiers with None."""
    if price is not None and price <= 0:
        raise ValidationFailed("the price must be a positive whole number of UGX")
    updated = await session.scalar(
        text("UPDATE wallets SET price_per_unit = :p WHERE id = :w RETURNING id"),
        {"p": price, "w": wallet_id},
    )
    if updated is None:
        raise NotFound(f"wallet {wallet_id} not found")


async def adjust(session: AsyncSession, wallet_id: str, amount: int, description: str) -> int:
    """An operator's credit (or debit, when negative) with its ledger entry."""
    return await credit(
        session, wallet_id, amount, kind=LedgerKind.ADJUSTMENT, description=description
    )
