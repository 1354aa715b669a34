"""Mobile Money collection providers behind one interface, chosen by the payer's operator."""

from __future__ import annotations

from libs.common.mobile_money import MobileMoneySettings
from services.billing.mobile_money.airtel import AirtelMoney
from services.billing.mobile_money.base import PaymentProvider
from services.billing.mobile_money.mtn import MtnMomo


def create_providers(settings: MobileMoneySettings) -> dict[str, PaymentProvider]:
    """One adapter per provider, keyed by the provider name stored on deposits."""
    return {
        "mtn": MtnMomo(settings.mtn, settings.request_timeout),
        "airtel": AirtelMoney(settings.airtel, settings.request_timeout),
    }
