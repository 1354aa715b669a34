"""Send jobs: an admission's new messages grouped by carrier and lane, for the outbox."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson

from libs.common.admission import Admission, AdmitResult, Lane
from libs.common.amqp import Topology
from libs.common.ids import new_id
from libs.common.outbox import PRIORITY_HIGH, PRIORITY_NORMAL, OutboxMessage
from services.billing.lanes import lane_for, validity
from services.billing.settings import BillingSettings


def send_jobs(
    settings: BillingSettings,
    topology: Topology,
    wallet_id: str,
    accepted: list[tuple[Admission, int]],
    results: dict[str, AdmitResult],
    price: int,
    now: datetime,
) -> list[OutboxMessage]:
    """Group the new messages by carrier and lane, in jobs of at most `job_size`."""
    lanes: dict[tuple[str, Lane], list[dict[str, Any]]] = defaultdict(list)
    texts: dict[tuple[str, Lane], dict[str, dict[str, Any]]] = defaultdict(dict)
    for admission, _ in accepted:
        lane = lane_for(admission, settings)
        cost = admission.units * price
        ids = results[admission.batch_id].message_ids
        for message_id, recipient, carrier in zip(
            ids, admission.recipients, admission.carriers, strict=True
        ):
            lanes[(carrier, lane)].append(
                {
                    "id": message_id,
                    "batch_id": admission.batch_id,
                    "recipient": recipient,
                    "units": admission.units,
                    "cost": cost,
                }
            )
            texts[(carrier, lane)][admission.batch_id] = {
                "message": admission.message,
                "encoding": admission.encoding,
                "wallet_id": wallet_id,
                "request_id": admission.request_id,
            }
    jobs: list[OutboxMessage] = []
    for (carrier, lane), messages in lanes.items():
        expires_at = (now + validity(settings, lane)).isoformat()
        for start in range(0, len(messages), settings.job_size):
            chunk = messages[start : start + settings.job_size]
            batch_ids = {m["batch_id"] for m in chunk}
            job_id = new_id("job")
            body = orjson.dumps(
                {
                    "job_id": job_id,
                    "carrier": carrier,
                    "lane": lane,
                    "expires_at": expires_at,
                    "texts": {b: texts[(carrier, lane)][b] for b in batch_ids},
                    "messages": chunk,
                }
            )
            jobs.append(
                OutboxMessage(
                    exchange=topology.send_exchange,
                    routing_key=topology.send_routing_key(carrier, lane),
                    body=body,
                    message_id=job_id,
                    priority=PRIORITY_HIGH if lane == "priority" else PRIORITY_NORMAL,
                )
            )
    return jobs
