"""One SMPP 3.4 bind to a carrier's SMSC: kept bound, windowed, paced, receipts stored first.

The bind speaks SMPP itself (`wire`, `connection`): a window of outstanding submit_sm,
pacing, enquire_link keepalive, reconnection with backoff, and a deliver_sm answered only
once the receipt it carries is stored, so a receipt in memory when the process dies is
delivered again by the carrier rather than lost. Any bind type works: TX submits, RX
receives, TRX does both.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import structlog

from libs.common.throttle import TokenBucket
from services.sender.carriers import wire
from services.sender.carriers.base import (
    NO_RESPONSE,
    Outcome,
    ReceiptCallback,
    Submission,
    SubmitKind,
    SubmitOutcome,
    command_status_name,
    send_as_task,
)
from services.sender.carriers.connection import Response, SmppConnection
from services.sender.carriers.deliveries import answer_deliver_sm
from services.sender.carriers.smpp_config import SmppBindConfig, relative_validity
from services.sender.carriers.submit_sm import answer_outcome, submit_bodies
from services.sender.carriers.window import Window

__all__ = ["SmppBind", "SmppBindConfig", "relative_validity"]

log = structlog.get_logger(__name__)

# How long a throttled answer (ESME_RTHROTTLED / ESME_RMSGQFUL) holds the whole bind back.
THROTTLE_PAUSE = 0.3
# How often one part is offered again after throttled answers before the caller is told.
THROTTLE_RETRIES = 20
# A session that lived this long counts as stable: the next reconnect starts the backoff over.
_STABLE_SESSION_FACTOR = 2.0
# SMPP 3.4 leaves the keepalive interval to the parties; carriers expect ~30-60 s.
ENQUIRE_INTERVAL = 30.0
# A session with nothing read for this long (not even enquire_link answers) is dead.
IDLE_LIMIT = ENQUIRE_INTERVAL * 3
# How long close() waits for the SMSC to answer unbind.
_UNBIND_TIMEOUT = 5.0


class _Session:
    """One bound connection; replaced, never reused, after it drops."""

    __slots__ = ("bound_at", "connection")

    def __init__(self, connection: SmppConnection, bound_at: float) -> None:
        self.connection, self.bound_at = connection, bound_at


class SmppBind:
    """A CarrierLink over one SMPP bind, reconnecting by itself until closed."""

    def __init__(self, name: str, config: SmppBindConfig, on_receipt: ReceiptCallback) -> None:
        self.name = name
        self.config = config
        self._on_receipt = on_receipt
        self._window = Window(config.window)
        self._bucket = TokenBucket(config.rate)
        self._session: _Session | None = None
        self._up = asyncio.Event()
        self._closed = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._outstanding = 0
        self._head = wire.submit_head(
            config.source_addr,
            config.source_ton,
            config.source_npi,
            config.dest_ton,
            config.dest_npi,
        )
        self._log = log.bind(carrier=name, system_id=config.system_id, bind=config.bind_type)

    @property
    def outstanding(self) -> int:
        """submit_sm sent on this bind and not yet answered."""
        return self._outstanding

    @property
    def can_submit(self) -> bool:
        """A receiver-only bind carries receipts but cannot submit (SMPP 3.4 §2.2)."""
        return self.config.bind_type != "RX"

    async def start(self) -> None:
        """Start the supervisor that binds, reads and rebinds in the background."""
        if self._supervisor is None and not self._closed.is_set():
            self._supervisor = asyncio.create_task(
                self._supervise(), name=f"smpp-{self.name}-{self.config.system_id}"
            )

    def is_up(self) -> bool:
        """Whether the bind is currently bound."""
        return self._up.is_set()

    async def wait_up(self, timeout: float) -> bool:
        """Wait up to timeout seconds for the bind; False if it is not up (or is closing)."""
        if self._up.is_set():
            return True
        if self._closed.is_set() or timeout <= 0:
            return False
        waiters = [asyncio.ensure_future(event.wait()) for event in (self._up, self._closed)]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self._up.is_set() and not self._closed.is_set()

    async def submit(self, message: Submission) -> SubmitOutcome:
        """Send each part as its own submit_sm, in order, stopping at the first failure."""
        bodies = self._bodies(message)
        if isinstance(bodies, SubmitOutcome):
            return bodies
        return await self._submit_bodies(bodies)

    def send(self, message: Submission, done: Outcome) -> None:
        """`submit`, with the outcome handed to `done`. A single part that may go at once
        (bound, a free slot in the window and in the pace) is written here and its answer
        read in the connection's callback: no task and no coroutine for the common case.
        Anything else (parts, a full window, a pause, a rebind) waits in `submit`'s task."""
        bodies = self._bodies(message)
        if isinstance(bodies, SubmitOutcome):
            done(bodies)
            return
        session = self._session
        if (
            len(bodies) == 1
            and session is not None
            and session.connection.is_open
            and self._window.try_take()
        ):
            if self._bucket.try_acquire():
                self._request(session.connection, bodies, done)
                return
            self._window.give()
        send_as_task(self._submit_bodies(bodies), done)

    def _bodies(self, message: Submission) -> list[bytes] | SubmitOutcome:
        if not self.can_submit:
            return SubmitOutcome(SubmitKind.TRANSIENT, [], NO_RESPONSE, "ESME_RINVBNDSTS")
        return submit_bodies(self._head, self.config.registered_delivery, message)

    async def _submit_bodies(self, bodies: list[bytes]) -> SubmitOutcome:
        message_ids: list[str] = []
        for body in bodies:
            # A throttled part is offered again here, after the bind's pause: going back to
            # part 1 would hand the carrier the parts it already took a second time.
            for _ in range(THROTTLE_RETRIES):
                outcome = await self._submit_part(body)
                if outcome.kind is not SubmitKind.THROTTLED:
                    break
            if outcome.kind is not SubmitKind.OK:
                return SubmitOutcome(
                    outcome.kind, message_ids, outcome.command_status, outcome.error_code
                )
            message_ids.extend(outcome.carrier_message_ids)
        return SubmitOutcome(SubmitKind.OK, message_ids, 0, None)

    async def close(self) -> None:
        """Unbind, stop the supervisor; the bind cannot be restarted."""
        if self._closed.is_set():
            return
        self._closed.set()
        session = self._session
        if session is not None and session.connection.is_open:
            connection = session.connection
            try:
                await asyncio.wait_for(connection.request(wire.UNBIND), _UNBIND_TIMEOUT)
            except ConnectionError:
                pass  # the SMSC closed the connection: unbound all the same
            except TimeoutError:
                self._log.warning("smpp.unbind_unanswered", timeout=_UNBIND_TIMEOUT)
            connection.close()
        if self._supervisor is not None:
            # The supervisor ends with the connection; cancel only a stuck one.
            done, _ = await asyncio.wait({self._supervisor}, timeout=2)
            if not done:
                self._supervisor.cancel()
                await asyncio.gather(self._supervisor, return_exceptions=True)
        self._log.info("smpp.closed")

    async def _submit_part(self, body: bytes) -> SubmitOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.response_timeout
        while True:
            if not await self.wait_up(deadline - loop.time()):
                return SubmitOutcome(SubmitKind.TRANSIENT, [], NO_RESPONSE, "not_bound")
            await self._window.take()
            try:
                await self._bucket.acquire()
                session = self._session
                if session is None or not session.connection.is_open:
                    continue  # dropped while we queued; nothing was sent, wait for the rebind
                self._outstanding += 1
                answer = session.connection.request(wire.SUBMIT_SM, body)
                try:
                    await answer
                except (TimeoutError, ConnectionError):
                    pass  # read from the future below
                finally:
                    self._outstanding -= 1
                return self._outcome(answer)
            finally:
                self._window.give()

    def _request(self, connection: SmppConnection, bodies: list[bytes], done: Outcome) -> None:
        """Write a single-part submit whose window slot and pace are taken; `done` gets its
        outcome from the connection's callback (a throttled one waits in `submit`'s task)."""
        self._outstanding += 1

        def answered(answer: asyncio.Future[Response]) -> None:
            self._outstanding -= 1
            self._window.give()
            outcome = self._outcome(answer)
            if outcome.kind is SubmitKind.THROTTLED:
                send_as_task(self._submit_bodies(bodies), done)
            else:
                done(outcome)

        connection.request(wire.SUBMIT_SM, bodies[0], answered)

    def _outcome(self, answer: asyncio.Future[Response]) -> SubmitOutcome:
        """The answer's outcome; a throttled one pauses the bind, a lost one is logged."""
        outcome = answer_outcome(answer)
        if outcome.kind is SubmitKind.THROTTLED:
            self._bucket.pause(THROTTLE_PAUSE)
            self._log.info(
                "smpp.throttled", command_status=outcome.command_status, pause=THROTTLE_PAUSE
            )
        elif outcome.error_code == "response_timeout":
            self._log.warning("smpp.submit_timed_out", timeout=self.config.response_timeout)
        elif outcome.error_code == "connection_lost":
            self._log.warning("smpp.submit_lost", error=str(answer.exception()))
        elif outcome.kind is SubmitKind.OK and not outcome.carrier_message_ids[0]:
            # message_id is mandatory (§4.4.2); without it no receipt can ever match.
            self._log.warning("smpp.submit_without_message_id")
        return outcome

    async def _supervise(self) -> None:
        failures = 0
        while not self._closed.is_set():
            session = await self._bind(failures)
            if session is None:
                failures += 1
            else:
                failures = 0 if self._stable(session) else failures + 1
            if not self._closed.is_set():
                await self._wait_before_reconnect(failures)

    async def _bind(self, failures: int) -> _Session | None:
        """Bind, serve until the connection ends, and tear it down; the session, or None."""
        loop = asyncio.get_running_loop()
        connection: SmppConnection | None = None
        try:
            try:
                connection = await self._connect()
            except Exception as exc:  # noqa: BLE001 - the supervisor must outlive any failure
                self._log.warning("smpp.bind_failed", error=repr(exc), attempt=failures + 1)
                return None
            session = self._session = _Session(connection, loop.time())
            self._up.set()
            self._log.info("smpp.bound", attempt=failures + 1)
            await self._serve(connection)
            if not self._closed.is_set():
                self._log.warning(
                    "smpp.disconnected",
                    uptime=round(loop.time() - session.bound_at, 3),
                    unbound_by_carrier=connection.unbound_by_peer,
                )
            return session
        finally:
            self._up.clear()
            self._session = None
            if connection is not None:
                connection.abort()

    async def _connect(self) -> SmppConnection:
        """Open the TCP connection and bind; the bound connection."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(cfg.connect_timeout):
            _, connection = await loop.create_connection(
                lambda: SmppConnection(self._deliver, cfg.response_timeout), cfg.host, cfg.port
            )
            try:
                body = wire.bind_body(cfg.system_id, cfg.password, cfg.system_type)
                status, _ = await connection.request(wire.BIND_COMMANDS[cfg.bind_type], body)
            except BaseException:
                connection.abort()
                raise
        if status:
            connection.abort()
            raise ConnectionError(f"bind refused: {command_status_name(status)}")
        return connection

    async def _serve(self, connection: SmppConnection) -> None:
        """Keep the link alive until it closes: enquire_link, overdue responses, silence."""
        loop = asyncio.get_running_loop()
        tick = min(1.0, self.config.response_timeout / 4)
        next_enquire = loop.time() + ENQUIRE_INTERVAL
        while True:
            await asyncio.wait({connection.closed}, timeout=tick)
            if connection.closed.done():
                return
            connection.expire()
            now = loop.time()
            if now - connection.last_read > IDLE_LIMIT:
                self._log.warning("smpp.carrier_silent", seconds=round(now - connection.last_read))
                connection.abort()
            elif now >= next_enquire:
                connection.notify(wire.ENQUIRE_LINK)
                next_enquire = now + ENQUIRE_INTERVAL

    def _deliver(self, connection: SmppConnection, sequence: int, body: bytes) -> None:
        answer_deliver_sm(connection, sequence, body, self._on_receipt, self._log)

    def _stable(self, session: _Session) -> bool:
        uptime = asyncio.get_running_loop().time() - session.bound_at
        return uptime >= _STABLE_SESSION_FACTOR * self.config.reconnect_max

    async def _wait_before_reconnect(self, failures: int) -> None:
        # Exponential backoff with full jitter, floored at reconnect_min, so that many binds
        # dropped together by one SMSC restart do not rebind in lockstep.
        cfg = self.config
        ceiling = min(cfg.reconnect_max, cfg.reconnect_min * 2 ** max(failures, 1))
        delay = random.uniform(cfg.reconnect_min, ceiling)
        self._log.info("smpp.reconnect_scheduled", attempt=failures + 1, delay=round(delay, 3))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=delay)
