"""Sender settings: one SMPP link per carrier, pacing, retries and the ambiguity window."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field, SecretStr, model_validator

from libs.common.settings import CommonSettings
from services.sender.carriers.smpp_config import SmppBindConfig


class CarrierLinkSettings(BaseModel):
    """How to reach one carrier's SMSC; every field can point the sender at any SMSC."""

    host: str = "127.0.0.1"
    port: int = 2775
    # Empty means "the carrier simulator's account for this carrier" (dev and test only).
    system_id: str = ""
    password: SecretStr = SecretStr("")
    system_type: str = ""
    # Submit binds. With receiver binds they are transmitters (TX), and receipts arrive on
    # receivers that acknowledge each one only once it is stored; without, transceivers
    # (TRX) carry both, and a receipt in memory at a crash is lost.
    binds: int = 1
    receiver_binds: int = 1
    window: int = 10
    rate: float = 500.0  # submit_sm per second per bind; 0 = unlimited
    source_addr: str = "Wesendall"
    source_ton: int = 5
    source_npi: int = 0
    registered_delivery: int = 1
    # Some SMSCs use ACCEPTD as a final state, others as an intermediate one.
    accepted_is_final: bool = False
    response_timeout: float = 30.0

    def bind_config(self) -> SmppBindConfig:
        return SmppBindConfig(
            host=self.host,
            port=self.port,
            system_id=self.system_id,
            password=self.password.get_secret_value(),
            system_type=self.system_type,
            bind_type="TX" if self.receiver_binds else "TRX",
            window=self.window,
            rate=self.rate,
            source_addr=self.source_addr,
            source_ton=self.source_ton,
            source_npi=self.source_npi,
            registered_delivery=self.registered_delivery,
            response_timeout=self.response_timeout,
        )


class SenderSettings(CommonSettings):
    # Defaults point at the carrier simulator; production sets host, port and credentials
    # per carrier, e.g. WESENDALL_CARRIER_LINKS__MTN__HOST.
    carrier_links: dict[str, CarrierLinkSettings] = Field(default_factory=dict)
    prefetch_priority: int = 16
    prefetch_bulk: int = 8
    # Outcomes are written in batches: at most this long after the first one waits.
    flush_interval: float = 0.02
    flush_max: int = 1000
    # Transient carrier errors: retried here with backoff this many times, then the
    # message goes through the delay queues until its validity runs out.
    transient_attempts: int = 4
    retry_backoff: float = 0.5
    # A message that may or may not have reached the carrier (worker killed, connection lost
    # mid-submit) waits this long for its receipt before it is submitted again.
    ambiguous_hold: timedelta = timedelta(seconds=20)
    # Receipts that match no message yet are kept this long for a late submit_sm_resp.
    pending_receipt_ttl: timedelta = timedelta(hours=1)
    # A queued message past its validity by this much is expired by the sweep.
    expiry_grace: timedelta = timedelta(seconds=60)
    sweep_interval: float = 30.0

    @model_validator(mode="after")
    def _every_carrier_has_a_link(self) -> SenderSettings:
        for carrier in self.carriers:
            link = self.carrier_links.setdefault(carrier, CarrierLinkSettings())
            if not link.system_id:
                if self.is_production:
                    raise ValueError(f"carrier_links.{carrier}.system_id is required in production")
                # The simulator serves each carrier under a system_id of the same name.
                link.system_id = carrier
                link.password = SecretStr(carrier)
        return self
