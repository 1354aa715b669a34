"""Load generator for the simulator: `python -m simulators.carrier.loadgen --count 20000`.

Measures how many submit_sm a second one simulator process takes, with or without
receipts, so benchmarks know the carrier side is not their bottleneck. Each session keeps
its own window of outstanding submits and drains its receipts in a reader task (smpp34
clients must, or their inbound queue fills).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import orjson
import smpp34


async def _session(
    host: str, port: int, system_id: str, count: int, window: int, receipts: bool, first: int
) -> tuple[int, int, int, float, float]:
    """Submit `count` messages over one bind; return (ok, receipts, repeats, submit s, total s)."""
    # A deep inbound queue: an smpp34 client whose queue fills drops the whole session.
    client = smpp34.Client(
        host,
        port,
        system_id,
        "secret",
        bind_type="TRX",
        window_size=window,
        inbound_capacity=1 << 16,
    )
    smsc = await client.connect()
    receipt_ids: set[bytes] = set()
    events = 0
    all_received = asyncio.Event()

    async def read() -> None:
        nonlocal events
        while True:
            event = await smsc.next()
            if isinstance(event, smpp34.Disconnected):
                return
            events += 1
            # Receipts are at-least-once: count distinct ids (first word of the text).
            receipt_ids.add(event.short_message.split(b" ", 1)[0])
            if len(receipt_ids) >= count:
                all_received.set()

    reader = asyncio.ensure_future(read())
    gate = asyncio.Semaphore(window)
    ok = 0

    async def submit(n: int) -> None:
        nonlocal ok
        async with gate:
            resp = await smsc.submit_sm(
                # 25677…: clear of the sandbox numbers (2567000001xx-3xx).
                f"25677{(first + n) % 10**7:07d}",
                b"Load test message %d" % n,
                source_addr="Wesendall",
                source_addr_ton=5,
                registered_delivery=1 if receipts else 0,
            )
            ok += resp.is_success

    started = time.perf_counter()
    await asyncio.gather(*(submit(n) for n in range(count)))
    submitted = time.perf_counter() - started
    if receipts:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_received.wait(), timeout=60)
    total = time.perf_counter() - started
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await smsc.unbind()
    await client.stop()
    return ok, len(receipt_ids), events - len(receipt_ids), submitted, total


async def main(args: argparse.Namespace) -> None:
    """Run the sessions in parallel and print one JSON summary line."""
    per_session = args.count // args.sessions
    results = await asyncio.gather(
        *(
            _session(
                args.host,
                args.port,
                args.system_id,
                per_session,
                args.window,
                args.receipts,
                first=i * per_session,
            )
            for i in range(args.sessions)
        )
    )
    await asyncio.sleep(0.2)  # let smpp34's threads settle before the loop closes
    ok = sum(r[0] for r in results)
    received = sum(r[1] for r in results)
    repeats = sum(r[2] for r in results)
    submit_s = max(r[3] for r in results)
    total_s = max(r[4] for r in results)
    print(
        orjson.dumps(
            {
                "sessions": args.sessions,
                "window": args.window,
                "submitted": per_session * args.sessions,
                "accepted": ok,
                "receipts": received,
                "repeated_receipts": repeats,
                "submits_per_s": round(ok / submit_s),
                "end_to_end_per_s": round(ok / total_s) if args.receipts else None,
            }
        ).decode()
    )


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m simulators.carrier.loadgen")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--system-id", default="mtn")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--receipts", action="store_true", help="request a receipt per submit")
    return parser.parse_args()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(parse_args()))
    else:
        uvloop.run(main(parse_args()))
