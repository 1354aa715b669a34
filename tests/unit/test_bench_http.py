"""The benchmark's lean HTTP client against a real aiohttp server: what it sends, what it
reads back, and how it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.load.http import ConnectionLost, HttpConnection
from tests.infra import serving

_HEADERS = {"Content-Type": "application/json", "Authorization": "Basic dTpw"}


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    reply = {
        "path": request.path,
        "auth": request.headers.get("Authorization"),
        "type": request.content_type,
        "body": body.decode(),
        "peer": request.transport.get_extra_info("peername")[1] if request.transport else None,
    }
    return web.json_response(reply, status=202, dumps=lambda v: orjson.dumps(v).decode())


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="late")


async def _hang_up(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.close()
    return web.Response(text="never read")


async def _streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"chunked")
    await response.write_eof()
    return response


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_post("/echo", _echo)
    app.router.add_post("/slow", _slow)
    app.router.add_post("/hang-up", _hang_up)
    app.router.add_post("/streamed", _streamed)
    async with serving(app) as test_server:
        yield test_server


async def test_posts_the_body_and_headers_and_reads_the_reply(server: TestServer) -> None:
    connection = HttpConnection(str(server.make_url("/echo")), _HEADERS, timeout=5)
    status, body = await connection.post(b'{"n": 1}')
    connection.close()

    assert status == 202
    reply = orjson.loads(body)
    assert reply["path"] == "/echo"
    assert reply["auth"] == "Basic dTpw"
    assert reply["type"] == "application/json"
    assert reply["body"] == '{"n": 1}'


async def test_keeps_one_connection_alive_across_requests(server: TestServer) -> None:
    connection = HttpConnection(str(server.make_url("/echo")), _HEADERS, timeout=5)
    replies = [orjson.loads((await connection.post(b"%d" % n))[1]) for n in range(20)]
    connection.close()

    assert [r["body"] for r in replies] == [str(n) for n in range(20)]
    assert len({r["peer"] for r in replies}) == 1


async def test_a_reply_that_does_not_come_in_time_fails_and_the_next_request_reconnects(
    server: TestServer,
) -> None:
    slow = HttpConnection(str(server.make_url("/slow")), _HEADERS, timeout=0.2)
    with pytest.raises(ConnectionLost):
        await slow.post(b"")
    slow.close()

    connection = HttpConnection(str(server.make_url("/echo")), _HEADERS, timeout=5)
    first = orjson.loads((await connection.post(b"a"))[1])
    connection._protocol.transport.close()  # type: ignore[union-attr]
    await asyncio.sleep(0.05)
    second = orjson.loads((await connection.post(b"b"))[1])
    connection.close()
    assert (first["body"], second["body"]) == ("a", "b")
    assert first["peer"] != second["peer"]


async def test_a_server_that_hangs_up_is_a_connection_lost(server: TestServer) -> None:
    connection = HttpConnection(str(server.make_url("/hang-up")), _HEADERS, timeout=5)
    with pytest.raises(ConnectionLost):
        await connection.post(b"")


async def test_a_chunked_reply_is_refused_rather_than_misread(server: TestServer) -> None:
    connection = HttpConnection(str(server.make_url("/streamed")), _HEADERS, timeout=5)
    with pytest.raises(ConnectionLost, match="chunked"):
        await connection.post(b"")
