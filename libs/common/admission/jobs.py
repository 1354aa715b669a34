"""Send jobs: an admission's new messages grouped by carrier and lane, for the outbox."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson

from libs.common.admission import Lane
from libs.common.admission.accepted import Accepted, AcceptedMessage, validity
from libs.common.admission.settings import AdmissionSettings
from libs.common.amqp import Topology
from libs.common.ids import new_id
from libs.common.outbox import BILLING, PRIORITY_HIGH, PRIORITY_NORMAL, OutboxMessage


def send_jobs(
    settings: AdmissionSettings,
    topology: Topology,
    accepted: Accepted,
    messages: Iterable[AcceptedMessage],
) -> list[OutboxMessage]:
    """Group `accepted`'s new messages (`accepted.messages`, which the caller has already
    made) by carrier and lane, in jobs of at most `job_size`."""
    lanes: dict[tuple[str, Lane], list[dict[str, Any]]] = defaultdict(list)
    texts: dict[tuple[str, Lane], dict[str, dict[str, Any]]] = defaultdict(dict)
    for m in messages:
        key = (m.carrier, m.lane)
        lanes[key].append(
            {
                "id": m.message_id,
                "batch_id": m.admission.batch_id,
                "recipient": m.recipient,
                "units": m.admission.units,
                "cost": m.cost,
            }
        )
        texts[key][m.admission.batch_id] = {
            "message": m.admission.message,
            "encoding": m.admission.encoding,
            "wallet_id": accepted.wallet_id,
            "request_id": m.admission.request_id,
        }
    jobs: list[OutboxMessage] = []
    for (carrier, lane), lane_messages in lanes.items():
        expires_at = (accepted.now + validity(settings, lane)).isoformat()
        for start in range(0, len(lane_messages), settings.job_size):
            chunk = lane_messages[start : start + settings.job_size]
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
                    origin=BILLING,
                    exchange=topology.send_exchange,
                    routing_key=topology.send_routing_key(carrier, lane),
                    body=body,
                    message_id=job_id,
                    priority=PRIORITY_HIGH if lane == "priority" else PRIORITY_NORMAL,
                )
            )
    return jobs
