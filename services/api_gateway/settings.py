"""Gateway settings: where it listens, how long it waits for billing, limits and caches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from libs.common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Public base URL, as customers reach it (used in the OpenAPI document).
    public_url: str = "http://127.0.0.1:8080"
    rpc_timeout: float = 10.0
    # Small sends of many requests ride one RPC to billing; larger ones go alone. Two RPCs
    # in flight make the batches large enough that single sends/s rose by a third in
    # make bench over four (billing admits a wallet's batch in one transaction). A wallet
    # has one of them at most; the other serves the other wallets.
    rpc_batch_max_recipients: int = 10
    rpc_batch_size: int = 64
    rpc_max_in_flight: int = 2
    # Groups larger than this get their send reply without the per-message list.
    group_messages_listed_max: int = 1_000
    # How long a verified secret is trusted from memory before bcrypt is asked again.
    credential_cache_ttl: timedelta = timedelta(minutes=5)
    last_used_flush_interval: timedelta = timedelta(minutes=1)
    # Requests per second per API key (burst: twice that), unless the key sets its own.
    default_rate_limit: int = 100
    idempotency_ttl: timedelta = timedelta(hours=24)
    # An in-flight Idempotency-Key older than this belongs to a request that died.
    idempotency_stale_after: timedelta = timedelta(seconds=60)
    operator_prefixes_file: Path | None = None
