"""One HTTP attempt of a delivery: signed, time-limited, never redirected, body capped."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import aiohttp
from sqlalchemy import RowMapping

from libs.common.egress import EgressRefused, check_url, read_capped
from libs.common.webhooks import signature_header
from services.webhooks.settings import WebhooksSettings
from services.webhooks.store import Outcome

USER_AGENT = "Wesendall-Webhooks/1"


def signing_secrets(row: RowMapping, now: datetime) -> list[str]:
    """The current secret, and the previous one while a rotation's overlap lasts."""
    secrets = [row["secret"]]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret"] and expires is not None and expires > now:
        secrets.append(row["previous_secret"])
    return secrets


async def attempt(
    http: aiohttp.ClientSession, settings: WebhooksSettings, row: RowMapping
) -> Outcome:
    """POST the delivery's payload once and say how it went."""
    started = datetime.now(UTC)
    clock = time.monotonic()
    body: bytes = row["payload"]
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # The event id, the same on every attempt and replay, so receivers can dedupe.
        "webhook-id": row["event_id"],
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            signing_secrets(row, started), row["event_id"], timestamp, body
        ),
    }
    code: int | None = None
    text: str | None = None
    error: str | None = None
    try:
        check_url(
            row["url"],
            allow_private=settings.allow_private_webhooks,
            require_https=settings.is_production,
        )
        async with http.post(
            row["url"], data=body, headers=headers, allow_redirects=False
        ) as response:
            code = response.status
            raw = await read_capped(response, settings.webhook_response_body_limit)
            text = raw.decode(errors="replace")
            if 300 <= code < 400:
                error = "redirect not followed"
    except EgressRefused as refused:
        error = f"egress refused: {refused.reason}"
    except TimeoutError:
        error = f"timeout after {settings.webhook_timeout:g}s"
    except aiohttp.ClientError as failure:
        error = f"{type(failure).__name__}: {failure}"[:300]
    latency = int((time.monotonic() - clock) * 1000)
    return Outcome(started, code, latency, error, text)
