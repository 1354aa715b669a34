"""What an SMS unit costs a wallet: its negotiated price, the volume tier, or the public price."""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.settings import CommonSettings

# A wallet's units over the 30 days before :day, for SQL where `w` is its wallets row: what
# the volume tier is judged on.
RECENT_UNITS = """(SELECT COALESCE(SUM(u.units), 0) FROM wallet_usage_daily u
                    WHERE u.wallet_id = w.id AND u.day > CAST(:day AS date) - 30)"""
# More units than a wallet can send in 30 days; the top of a band with no upper bound.
UNITS_UNBOUNDED = 2**62


@dataclass(frozen=True, slots=True)
class Quote:
    """A wallet's price per unit, and what it holds under: the same negotiated price, and
    30-day units from `units_from` to `units_to` inclusive."""

    price: int
    negotiated: int | None
    units_from: int
    units_to: int


def quote(settings: CommonSettings, negotiated: int | None, units_last_30_days: int) -> Quote:
    """The price per SMS unit for a wallet, in whole UGX, with the band it holds over."""
    if negotiated is not None:
        return Quote(negotiated, negotiated, 0, UNITS_UNBOUNDED)
    if units_last_30_days >= settings.volume_tier_units:
        return Quote(settings.volume_tier_price, None, settings.volume_tier_units, UNITS_UNBOUNDED)
    return Quote(settings.price_per_unit, None, 0, settings.volume_tier_units - 1)


def unit_price(settings: CommonSettings, negotiated: int | None, units_last_30_days: int) -> int:
    """The price per SMS unit for a wallet, in whole UGX."""
    return quote(settings, negotiated, units_last_30_days).price
