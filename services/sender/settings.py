"""Sender settings: one SMPP link per carrier, pacing, retries and the ambiguity window."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field, SecretStr, model_validator

from libs.common.amqp import LANES
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
    # Submit binds are transmitters (TX) and receipts arrive on receiver binds (RX); TRX
    # submit binds carry receipts too. Every bind acknowledges a receipt only once it is
    # stored. A sender may run without receivers when another sender process holds them.
    bind_type: str = Field(default="TX", pattern="^(TX|TRX)$")
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
            bind_type=self.bind_type,
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
    # The lanes this process consumes, each with its consumer priority: the broker gives
    # a lane's jobs to its highest-priority consumer with room, so a sender dedicated to the
    # priority lane takes every OTP while another takes them only if it is gone or full.
    lanes: dict[str, int] = Field(default_factory=lambda: {"priority": 0, "bulk": 0})
    prefetch_priority: int = 16
    prefetch_bulk: int = 8
    # Outcomes are written in batches: at most this long after the first one waits. Each
    # flush costs a transaction whatever its size; 50 ms measured ~20% more single sends/s
    # in make bench than 20 ms (no gain at 100 ms), and delays no submit: only the stored
    # status, the job's ack and the carrier's receipt acknowledgement wait for it.
    flush_interval: float = 0.05
    flush_max: int = 1000
    # Flushes in flight at once: while one waits on Postgres the next batch is written.
    flush_concurrency: int = 3
    # A carrier offers only so many receipts before we acknowledge them (its window per
    # receiver bind), and we acknowledge each once it is committed: when this many wait
    # and no flush is in flight, they are written at once instead of at the next interval.
    # After a 100k campaign in make bench (two binds, a window of 32 each) every receipt
    # was stored 37 s after the first request instead of 98 s; a steady stream of 1k/s
    # pays about a third more flushes for it. 16 stored them no faster and flushed more.
    receipt_flush_min: int = Field(default=32, ge=1)
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
    # How often the sender logs what it moved and what waits (sender.progress).
    report_interval: float = 10.0

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
        unknown = set(self.lanes) - set(LANES)
        if unknown:
            raise ValueError(f"unknown lanes {sorted(unknown)}; lanes are {LANES}")
        return self
