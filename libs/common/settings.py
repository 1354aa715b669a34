"""Typed settings shared by every process; each service subclasses `CommonSettings`."""

from __future__ import annotations

import enum

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.mobile_money import MobileMoneySettings

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/wesendall"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class Environment(enum.StrEnum):
    DEV = "dev"
    TEST = "test"
    PRODUCTION = "production"


class CommonSettings(BaseSettings):
    """DSNs, environment and logging: what every Wesendall process needs."""

    model_config = SettingsConfigDict(
        env_prefix="WESENDALL_", env_nested_delimiter="__", extra="ignore"
    )

    environment: Environment = Environment.DEV
    database_url: str = DEFAULT_DATABASE_URL
    amqp_url: str = DEFAULT_AMQP_URL
    # Prepended to every exchange and queue name, so parallel test runs on one broker
    # never see each other's traffic. Empty in production.
    amqp_namespace: str = ""
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    # Carriers we hold SMPP routes to; each has a priority and a bulk send queue.
    carriers: list[str] = ["mtn", "airtel"]
    # Prices in whole UGX per SMS unit. Once a wallet has bought `volume_tier_units` in the
    # last 30 days it pays the tier price; an operator may set a wallet's own price instead.
    price_per_unit: int = 35
    volume_tier_units: int = 100_000
    volume_tier_price: int = 32
    # Cost of the bcrypt hash stored for each new API secret.
    bcrypt_rounds: int = 12
    # CPU niceness (0 to 19): background work sharing a machine with the OTP path (the
    # bulk sender, webhook deliveries) yields the CPU to it when both want it.
    nice: int = Field(default=0, ge=0, le=19)
    db_pool_size: int = 10
    db_max_overflow: int = 5
    # Top-up providers (billing calls them; the gateway checks their callbacks).
    mobile_money: MobileMoneySettings = MobileMoneySettings()
    # Webhook URLs on loopback, private, link-local or metadata addresses: refused
    # unless this is true. Unset, they are allowed in dev and test only.
    webhooks_allow_private_targets: bool | None = None

    @model_validator(mode="after")
    def _production_secrets_set(self) -> CommonSettings:
        default = MobileMoneySettings().callback_secret.get_secret_value()
        if self.is_production and self.mobile_money.callback_secret.get_secret_value() == default:
            raise ValueError("WESENDALL_MOBILE_MONEY__CALLBACK_SECRET must be set in production")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def allow_private_webhooks(self) -> bool:
        if self.webhooks_allow_private_targets is not None:
            return self.webhooks_allow_private_targets
        return self.environment in (Environment.DEV, Environment.TEST)
