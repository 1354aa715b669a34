"""`python -m bench.ceiling --port N [--loop uvloop|asyncio]`: the bare aiohttp app the
benchmark measures first.

One handler that reads the body and returns a small JSON object: what aiohttp, uvloop
and the load generator manage on this machine with no database, broker or business logic
behind them. Every platform figure is also shown as a fraction of this one. On asyncio's
own event loop (`--loop asyncio`) it is the plain aiohttp handler that published
figures for aiohttp usually mean, which tells how fast this machine is running now.
"""

from __future__ import annotations

import argparse

from aiohttp import web

_BODY = b'{"status":"ok"}'


async def answer(request: web.Request) -> web.Response:
    """Read the request as a real handler would, then reply at once."""
    await request.read()
    return web.Response(body=_BODY, content_type="application/json")


def main() -> None:
    """Serve on 127.0.0.1:`--port` until terminated."""
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    port = args.port
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    loop = None
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
