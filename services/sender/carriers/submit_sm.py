"""A message as submit_sm bodies, and what the SMSC's answer to one means (SMPP 3.4 §4.4)."""

from __future__ import annotations

import asyncio

from services.sender.carriers import wire
from services.sender.carriers.base import (
    NO_RESPONSE,
    Submission,
    SubmitKind,
    SubmitOutcome,
    classify,
    command_status_name,
)
from services.sender.carriers.connection import Response
from services.sender.carriers.smpp_config import (
    MAX_ADDRESS_DIGITS,
    MAX_SHORT_MESSAGE,
    relative_validity,
)


def submit_bodies(
    head: bytes, registered_delivery: int, message: Submission
) -> list[bytes] | SubmitOutcome:
    """The submit_sm body of each part, or the refusal of a message no SMSC would take:
    checked before anything is sent, so a bad part never leaves a message half sent."""
    parts = message.parts
    if not parts:
        raise ValueError("a message has at least one part")
    digits = wire.address_digits(message.destination)
    if not digits or len(digits) > MAX_ADDRESS_DIGITS:
        return _refused("ESME_RINVDSTADR")
    if max(map(len, parts)) > MAX_SHORT_MESSAGE:
        return _refused("ESME_RINVMSGLEN")
    validity = message.validity
    validity_period = relative_validity(validity) if validity is not None else ""
    return [
        wire.submit_sm_body(
            head,
            digits,
            part,
            esm_class=message.esm_class,
            data_coding=message.data_coding,
            registered_delivery=registered_delivery,
            validity_period=validity_period,
        )
        for part in parts
    ]


def answer_outcome(answer: asyncio.Future[Response]) -> SubmitOutcome:
    """What a submit_sm's answer means: its response, a timeout, or a lost connection.

    Sent but unanswered (the connection closed, or the response timeout passed), the part
    may have reached the SMSC: a real SMSC error arrives as a response, not as silence.
    """
    error = answer.exception()
    if isinstance(error, TimeoutError):
        return SubmitOutcome(SubmitKind.CONNECTION_LOST, [], NO_RESPONSE, "response_timeout")
    if error is not None:
        return SubmitOutcome(SubmitKind.CONNECTION_LOST, [], NO_RESPONSE, "connection_lost")
    status, response = answer.result()
    kind = classify(status)
    if kind is SubmitKind.OK:
        return SubmitOutcome(kind, [wire.message_id(response)], status, None)
    return SubmitOutcome(kind, [], status, command_status_name(status))


def _refused(error_code: str) -> SubmitOutcome:
    """A message refused here, before anything was sent: the SMSC would refuse it too."""
    return SubmitOutcome(SubmitKind.PERMANENT, [], NO_RESPONSE, error_code)
