"""`wesendall`: the operator's command line (accounts, keys, prices, ledger checks, migrations)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.amqp import Topology, connect
from libs.common.db import create_engine, create_sessionmaker, session_scope
from libs.common.errors import DomainError
from libs.common.outbox import BILLING, OutboxRelay
from libs.common.settings import CommonSettings
from services.admin import service
from services.billing.ledger import ledger_mismatches, unbatched_messages


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wesendall", description=__doc__)
    top = parser.add_subparsers(dest="area", required=True)
    admin = top.add_parser("admin", help="accounts, keys, prices, credits").add_subparsers(
        dest="command", required=True
    )
    account = admin.add_parser("create-account", help="an account, its wallet and a key")
    account.add_argument("--phone", required=True, help="the holder's Ugandan mobile number")
    account.add_argument("--email")
    account.add_argument("--credit", type=int, default=0, help="opening credit in UGX")
    account.add_argument("--rate-limit", type=int, help="requests per second for the key")
    account.add_argument("--json", action="store_true")
    key = admin.add_parser("create-key", help="another key for a wallet's account")
    key.add_argument("--wallet", required=True)
    key.add_argument("--rate-limit", type=int)
    key.add_argument("--json", action="store_true")
    revoke = admin.add_parser("revoke-key", help="revoke a key everywhere at once")
    revoke.add_argument("--key", required=True)
    price = admin.add_parser("set-price", help="a wallet's own price per SMS unit")
    price.add_argument("--wallet", required=True)
    group = price.add_mutually_exclusive_group(required=True)
    group.add_argument("--price", type=int, help="UGX per unit")
    group.add_argument("--clear", action="store_true", help="back to the public tiers")
    adjust = admin.add_parser("adjust", help="credit (or debit) a wallet with a ledger entry")
    adjust.add_argument("--wallet", required=True)
    adjust.add_argument("--amount", type=int, required=True, help="UGX; negative to debit")
    adjust.add_argument("--description", required=True)
    admin.add_parser(
        "check-ledger",
        help="every wallet's balance equals its ledger's sum; every message has its batch",
    )
    db = top.add_parser("db", help="database schema").add_subparsers(dest="command", required=True)
    db.add_parser("upgrade", help="apply every migration")
    return parser


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(data).decode())
    else:
        for name, value in data.items():
            print(f"{name}: {value}")


async def _with_session(settings: CommonSettings, action: Callable[[Any], Awaitable[Any]]) -> Any:
    engine = create_engine(settings, "wesendall-cli")
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            return await action(session)
    finally:
        await engine.dispose()


async def _check_ledger(
    session: AsyncSession,
) -> tuple[list[tuple[str, int, int]], list[tuple[str, str]]]:
    """Wallets that do not balance, and messages without their batch, in one session."""
    return await ledger_mismatches(session), await unbatched_messages(session)


async def _publish_outbox(settings: CommonSettings) -> None:
    """Publish what the command queued now; if the broker is away, billing's relay will."""
    engine = create_engine(settings, "wesendall-cli")
    try:
        connection = await connect(settings, "wesendall-cli")
        try:
            topology = Topology(settings.amqp_namespace)
            relay = OutboxRelay(
                create_sessionmaker(engine),
                connection,
                origin=BILLING,
                best_effort_exchanges=frozenset({topology.events_exchange}),
                name="cli",
            )
            await relay.drain_once()
        finally:
            await connection.close()
    except Exception as error:  # noqa: BLE001 — the row stays in the outbox
        print(f"note: the revocation event will be published later ({error!r})", file=sys.stderr)
    finally:
        await engine.dispose()


async def _run(args: argparse.Namespace, settings: CommonSettings) -> int:
    rounds = settings.bcrypt_rounds
    if args.command == "create-account":
        creds = await _with_session(
            settings,
            lambda s: service.create_account(
                s,
                phone=args.phone,
                email=args.email,
                credit_ugx=args.credit,
                bcrypt_rounds=rounds,
                rate_limit=args.rate_limit,
            ),
        )
        _print(creds.as_json(), args.json)
    elif args.command == "create-key":
        creds = await _with_session(
            settings,
            lambda s: service.create_key(
                s, wallet_id=args.wallet, bcrypt_rounds=rounds, rate_limit=args.rate_limit
            ),
        )
        _print(creds.as_json(), args.json)
    elif args.command == "revoke-key":
        topology = Topology(settings.amqp_namespace)
        await _with_session(settings, lambda s: service.revoke_key(s, topology, args.key))
        await _publish_outbox(settings)
        print(f"revoked {args.key}")
    elif args.command == "set-price":
        price = None if args.clear else args.price
        await _with_session(settings, lambda s: service.set_price(s, args.wallet, price))
        print(f"{args.wallet}: {'public tiers' if price is None else f'UGX {price} per unit'}")
    elif args.command == "adjust":
        balance = await _with_session(
            settings, lambda s: service.adjust(s, args.wallet, args.amount, args.description)
        )
        print(f"{args.wallet}: balance UGX {balance}")
    elif args.command == "check-ledger":
        mismatches, unbatched = await _with_session(settings, _check_ledger)
        for wallet_id, balance, total in mismatches:
            print(f"MISMATCH {wallet_id}: balance {balance}, ledger sum {total}")
        for message_id, batch_id in unbatched:
            print(f"UNBATCHED {message_id}: batch {batch_id} missing or of another wallet")
        if mismatches:
            print(f"{len(mismatches)} wallet(s) do not balance")
        if unbatched:
            print(f"messages without their batch (first {len(unbatched)} shown)")
        if not mismatches and not unbatched:
            print("ledger ok")
        return 1 if mismatches or unbatched else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = CommonSettings()
    if args.area == "db":
        from libs.common.migrations import upgrade

        upgrade(settings.database_url)
        return 0
    try:
        return asyncio.run(_run(args, settings))
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
