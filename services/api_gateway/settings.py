"""Gateway settings: where it listens, how it admits sends, limits and caches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from libs.common.admission.settings import AdmissionSettings


class GatewaySettings(AdmissionSettings):
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Public base URL, as customers reach it (used in the OpenAPI document).
    public_url: str = "http://127.0.0.1:8080"
    # How long a request to billing (a large send's admission, a top-up) is waited for.
    rpc_timeout: float = 10.0
    # Sends of at most this many recipients are admitted here, in rounds: a transaction
    # per wallet admits up to `admission_round_max` requests that arrived together, with
    # at most `admission_concurrency` rounds (of different wallets) in flight. Larger
    # sends are admitted by billing-bulk (`services/api_gateway/admissions.py`).
    direct_admission_max_recipients: int = 10
    admission_round_max: int = 64
    admission_concurrency: int = 4
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
