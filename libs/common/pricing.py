"""What an SMS unit costs a wallet: its negotiated price, the volume tier, or the public price."""

from __future__ import annotations

from libs.common.settings import CommonSettings


def unit_price(settings: CommonSettings, negotiated: int | None, units_last_30_days: int) -> int:
    """The price per SMS unit for a wallet, in whole UGX."""
    if negotiated is not None:
        return negotiated
    if units_last_30_days >= settings.volume_tier_units:
        return settings.volume_tier_price
    return settings.price_per_unit
