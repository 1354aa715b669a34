"""Runs the carrier simulator as a real process and talks to it the way our sender does."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import smpp34

from tests.infra import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

# SMPP 3.4 numbers, spelled out here so the tests do not lean on the simulator's own table.
ESME_RINVDSTADR = 0x0B
ESME_RTHROTTLED = 0x58
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_STATE = 0x0427

RECEIPT_TEXT = re.compile(
    r"^id:(?P<id>\S+) sub:(?P<sub>\d{3}) dlvrd:(?P<dlvrd>\d{3}) "
    r"submit date:(?P<submit>\d{10}) done date:(?P<done>\d{10}) "
    r"stat:(?P<stat>[A-Z]+) err:(?P<err>\d{3}) text:(?P<text>.*)$",
    re.DOTALL,
)


@dataclass
class RunningSimulator:
    """A simulator subprocess and where to reach it."""

    process: subprocess.Popen[bytes]
    smpp_port: int
    http_port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_simulator(log_path: Path, *args: str, timeout: float = 20.0) -> RunningSimulator:
    """Start `python -m simulators.carrier` on free ports and wait until /healthz answers."""
    smpp_port, http_port = free_port(), free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulators.carrier",
                "--smpp-port",
                str(smpp_port),
                "--http-port",
                str(http_port),
                *args,
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    simulator = RunningSimulator(process, smpp_port, http_port, log_path)
    wait_healthy(process, simulator.base_url, simulator.log, timeout)
    return simulator


def wait_healthy(
    process: subprocess.Popen[bytes], base_url: str, log: Callable[[], str], timeout: float
) -> None:
    """Return once `base_url`/healthz answers 200; stop the process and raise if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"simulator exited with {process.returncode}:\n{log()}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"simulator not healthy after {timeout}s:\n{log()}")


def stop_simulator(simulator: RunningSimulator, timeout: float = 10.0) -> int:
    """SIGTERM, as a deployment would; kill it if it does not exit in time. Return its code."""
    return stop_process(simulator.process, timeout)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM, as a deployment would; kill it if it does not exit in time. Return its code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


async def http(
    simulator: RunningSimulator, method: str, path: str, json: Any = None
) -> tuple[int, Any]:
    """One request to the inspection API; returns (status, decoded JSON body)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, simulator.base_url + path, json=json) as response,
    ):
        return response.status, await response.json()


async def stats(simulator: RunningSimulator) -> dict[str, Any]:
    """The simulator's counters, as `GET /stats` gives them."""
    status, body = await http(simulator, "GET", "/stats")
    assert status == 200
    return body  # type: ignore[no-any-return]


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    """Poll an async `check()` until it returns something truthy; return that."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.05)


class Esme:
    """An SMPP client bind that keeps draining deliver_sm into a queue, as smpp34 requires."""

    def __init__(self, client: smpp34.Client, smsc: smpp34.Smsc) -> None:
        self.client = client
        self.smsc = smsc
        self.inbox: asyncio.Queue[smpp34.DeliverSmEvent] = asyncio.Queue()
        self.closed = False
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def bind(cls, port: int, system_id: str = "mtn", bind_type: str = "TRX") -> Esme:
        client = smpp34.Client(
            "127.0.0.1", port, system_id, "secret", bind_type=bind_type, window_size=10
        )
        return cls(client, await client.connect())

    async def _read(self) -> None:
        while True:
            event = await self.smsc.next()
            if isinstance(event, smpp34.Disconnected):
                return
            self.inbox.put_nowait(event)

    async def submit(
        self, destination: str, body: bytes = b"Hello from Wesendall", **fields: Any
    ) -> smpp34.SubmitSmResp:
        """submit_sm from an alphanumeric sender id, asking for a receipt unless told not to."""
        pdu: dict[str, Any] = {
            "source_addr": "Wesendall",
            "source_addr_ton": 5,
            "source_addr_npi": 0,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "registered_delivery": 1,
        }
        pdu.update(fields)
        return await self.smsc.submit_sm(destination, body, **pdu)

    async def receipt(self, timeout: float = 10.0) -> smpp34.DeliverSmEvent:
        """The next deliver_sm, waiting at most `timeout` seconds."""
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def close(self) -> None:
        """Unbind politely (nothing to do if already dropped)."""
        if self.closed:
            return
        self.closed = True
        self._reader.cancel()
        with contextlib.suppress(smpp34.SmppError):
            await self.smsc.unbind()
        await self.client.stop()


class RawEsme:
    """A bare-socket transceiver, for what smpp34's client cannot do: vanish without an unbind.

    (`smpp34.Client.stop()` leaves the TCP session up while its `Smsc` handle is alive.)
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._sequence = 1

    @classmethod
    async def bind(cls, port: int, system_id: str) -> RawEsme:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        esme = cls(reader, writer)
        # bind_transceiver: system_id, password, system_type, version 0x34, ton, npi, range.
        body = system_id.encode() + b"\0secret\0\0" + bytes([0x34, 0, 0]) + b"\0"
        status, _ = await esme._request(0x00000009, body)
        assert status == 0, hex(status)
        return esme

    async def submit(self, destination: str, body: bytes = b"Hello") -> str:
        """submit_sm asking for a receipt; returns the carrier's message id."""
        self._sequence += 1
        pdu = smpp34.SubmitSm(
            "Wesendall",
            destination,
            body,
            source_addr_ton=5,
            dest_addr_ton=1,
            dest_addr_npi=1,
            registered_delivery=1,
            sequence_number=self._sequence,
        ).encode()
        status, resp_body = await self._exchange(pdu)
        assert status == 0, hex(status)
        return resp_body.split(b"\0", 1)[0].decode()

    async def _request(self, command_id: int, body: bytes) -> tuple[int, bytes]:
        header = struct.pack(">IIII", 16 + len(body), command_id, 0, self._sequence)
        return await self._exchange(header + body)

    async def _exchange(self, pdu: bytes) -> tuple[int, bytes]:
        self._writer.write(pdu)
        await self._writer.drain()
        length, _command_id, status, _sequence = struct.unpack(
            ">IIII", await self._reader.readexactly(16)
        )
        return status, await self._reader.readexactly(length - 16)

    async def unanswered_pdu(self) -> tuple[int, bytes]:
        """Read the next PDU the simulator sends, and leave it unanswered."""
        length, command_id, _status, _sequence = struct.unpack(
            ">IIII", await self._reader.readexactly(16)
        )
        return command_id, await self._reader.readexactly(length - 16)

    async def drop(self) -> None:
        """Reset the connection, like a sender that crashed."""
        self._writer.transport.abort()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


def receipt_fields(event: smpp34.DeliverSmEvent) -> dict[str, str]:
    """The Appendix B fields of a receipt's text."""
    match = RECEIPT_TEXT.match(event.short_message.decode("ascii"))
    assert match, event.short_message
    return match.groupdict()


def receipt_tlvs(event: smpp34.DeliverSmEvent) -> dict[int, bytes]:
    """A receipt's optional parameters by tag."""
    return {tlv.tag: tlv.value for tlv in event.tlvs}
