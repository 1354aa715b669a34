"""The interface every carrier connection offers the sender, and how SMPP answers are classified."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import structlog

from services.sender.receipts import Receipt

log = structlog.get_logger(__name__)

# Receipts are handed over from the connection's reader, which must keep draining the
# socket, so the callback must only enqueue. It may return an awaitable that completes once
# the receipt is stored: the carrier's deliver_sm is answered only then (with an error, so
# that the carrier offers it again, if the awaitable fails).
ReceiptCallback = Callable[[Receipt], Awaitable[object] | None]

# command_status of an outcome the SMSC never answered: not bound, connection lost, timed out.
NO_RESPONSE = -1


class SubmitKind(enum.StrEnum):
    """What the sender should do with a message after a submit attempt."""

    OK = enum.auto()
    THROTTLED = enum.auto()  # retry soon; the carrier asked us to slow down
    TRANSIENT = enum.auto()  # not sent or refused for now; retry with backoff
    PERMANENT = enum.auto()  # the carrier will never take this message as it is
    CONNECTION_LOST = enum.auto()  # may or may not have been sent; never blindly resend


@dataclass(frozen=True, slots=True)
class Submission:
    """One message as a carrier link takes it: the handset, its parts (already encoded and,
    past one, each with its concatenation header) and how they are coded."""

    destination: str
    parts: Sequence[bytes]
    data_coding: int
    esm_class: int
    validity: timedelta | None  # how long the carrier may keep trying; None: its default


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """The result of submitting every part of one message to one carrier.

    carrier_message_ids holds one id per part the carrier accepted, in order; on a failure it
    lists the parts accepted before it, so the caller knows what already reached the carrier.
    """

    kind: SubmitKind
    carrier_message_ids: list[str]
    command_status: int
    error_code: str | None


# Receives a message's submit outcome (`CarrierLink.send`); it must not raise.
Outcome = Callable[[SubmitOutcome], None]

# Submits awaited in tasks of their own (`send_as_task`), kept until they end.
_submitting: set[asyncio.Task[SubmitOutcome]] = set()


def send_as_task(submission: Coroutine[Any, Any, SubmitOutcome], done: Outcome) -> None:
    """Await a submit in a task of its own and hand its outcome to `done`.

    A submit that crashes is reported as a transient failure, so its message is tried
    again; one cancelled (the sender is stopping) has no outcome.
    """
    task = asyncio.ensure_future(submission)
    _submitting.add(task)

    def finished(task: asyncio.Task[SubmitOutcome]) -> None:
        _submitting.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("sender.submit_crashed", exc_info=error)
            done(SubmitOutcome(SubmitKind.TRANSIENT, [], NO_RESPONSE, "internal_error"))
        else:
            done(task.result())

    task.add_done_callback(finished)


@runtime_checkable
class CarrierLink(Protocol):
    """A connection to one carrier: submits messages, delivers receipts to a callback."""

    name: str

    async def start(self) -> None:
        """Begin connecting in the background; returns without waiting for the bind."""

    async def submit(self, message: Submission) -> SubmitOutcome:
        """Submit every part in order; stop at the first part that fails."""

    def send(self, message: Submission, done: Outcome) -> None:
        """`submit`, with the outcome handed to `done` (at once, or from a callback):
        what the sender uses, so that the common submit costs no task of its own."""

    def is_up(self) -> bool:
        """Whether a submit now would be sent without waiting for a (re)connection."""

    async def wait_up(self, timeout: float) -> bool:
        """Wait until the link is up; False if it is not within timeout seconds."""

    async def close(self) -> None:
        """Unbind and release the connection; the link is unusable afterwards."""


# SMPP command_status values by name (SMPP 3.4 §5.1.3; 0x104 ESME_RINVDCS is SMPP 5.0 §4.7.6).
COMMAND_STATUS_NAMES: dict[int, str] = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG",
    0x07: "ESME_RINVREGDLVFLG",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL",
    0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP",
    0x33: "ESME_RINVNUMDESTS",
    0x34: "ESME_RINVDLNAME",
    0x40: "ESME_RINVDESTFLAG",
    0x42: "ESME_RINVSUBREP",
    0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP",
    0x54: "ESME_RINVREPFLAG",
    0x55: "ESME_RINVNUMMSGS",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL",
    0xC0: "ESME_RINVOPTPARSTREAM",
    0xC1: "ESME_ROPTPARNOTALLWD",
    0xC2: "ESME_RINVPARLEN",
    0xC3: "ESME_RMISSINGOPTPARAM",
    0xC4: "ESME_RINVOPTPARAMVAL",
    0xFE: "ESME_RDELIVERYFAILURE",
    0xFF: "ESME_RUNKNOWNERR",
    0x104: "ESME_RINVDCS",
}

THROTTLED_STATUSES = frozenset({0x58, 0x14})  # ESME_RTHROTTLED, ESME_RMSGQFUL

# Statuses that no retry of the same message can fix. Everything else not OK or throttled is
# transient - ESME_RSYSERR, ESME_RX_T_APPN, ESME_RSUBMITFAIL, ESME_RUNKNOWNERR, ESME_RINVBNDSTS
# and any code we do not know - because wrongly retrying costs a few attempts, while wrongly
# failing loses a message the carrier would have taken.
PERMANENT_STATUSES = frozenset(
    {
        0x01,  # ESME_RINVMSGLEN
        0x06,  # ESME_RINVPRTFLG
        0x07,  # ESME_RINVREGDLVFLG
        0x0A,  # ESME_RINVSRCADR
        0x0B,  # ESME_RINVDSTADR
        0x15,  # ESME_RINVSERTYP
        0x33,  # ESME_RINVNUMDESTS
        0x40,  # ESME_RINVDESTFLAG
        0x42,  # ESME_RINVSUBREP
        0x43,  # ESME_RINVESMCLASS
        0x48,  # ESME_RINVSRCTON
        0x49,  # ESME_RINVSRCNPI
        0x50,  # ESME_RINVDSTTON
        0x51,  # ESME_RINVDSTNPI
        0x61,  # ESME_RINVSCHED
        0x62,  # ESME_RINVEXPIRY
        0x65,  # ESME_RX_P_APPN
        0x66,  # ESME_RX_R_APPN
        0x104,  # ESME_RINVDCS
    }
)


def command_status_name(command_status: int) -> str:
    """The SMPP name of a command_status, or its hex form (0x0000000b) when unknown."""
    return COMMAND_STATUS_NAMES.get(command_status, f"0x{command_status:08x}")


def classify(command_status: int) -> SubmitKind:
    """Classify a submit_sm_resp command_status (SMPP 3.4 §5.1.3)."""
    if command_status == 0:
        return SubmitKind.OK
    if command_status in THROTTLED_STATUSES:
        return SubmitKind.THROTTLED
    if command_status in PERMANENT_STATUSES:
        return SubmitKind.PERMANENT
    return SubmitKind.TRANSIENT
