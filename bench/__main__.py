"""`python -m bench` (`make bench`): benchmark the Wesendall platform on this machine.

Starts a platform of its own, as the platform tests do (every service and the carrier
simulator as processes, a fresh migrated database, a unique AMQP namespace, free ports,
logs in a temporary directory), drives it from a separate load process
(`python -m bench.load`), then stops it, drops the database and deletes the namespace.
Prints a table, then the results as one JSON object
`{"ceiling", "single", "campaign", "otp_during_campaign", "webhooks", "machine"}` on stdout, and
writes that object to `bench/results/latest.json`. Progress goes to stderr.

Phases:
  ceiling   a bare aiohttp app (`bench/ceiling.py`) on uvloop under the same load: the
            requests/s every other throughput is also shown as a fraction of. Then the
            same app on asyncio's own loop, the plain aiohttp figure outside references
            quote, which shows how fast the machine runs during this benchmark.
  single    POST /api/v1/sms/send, one random MTN/Airtel number each, at fixed concurrency:
            202s/s, latency, the carrier's submit_sm/s in the same window, the backlog
            at its close and how long the carrier took to receive the rest, and a check
            that the wallet paid exactly what the replies said.
  campaign  recipients in fixed-size "normal" requests, a few in flight: recipients/s
            accepted, recipients/s received by the carrier simulator, and recipients/s
            whose delivery receipts the platform stored (acknowledged to the simulator),
            with how many were still unstored when the last submit arrived; meanwhile an OTP
            ("high", a new number each) every --otp-interval, timed from its 202 to the
            simulator's receivedAt (reported as otp_during_campaign).
  webhooks  a fresh wallet with one webhook for message.delivered, pointed at a receiver
            in this process; --webhook-events synthetic events published straight to the
            events exchange, 100 to a message as the sender packs them: deliveries/s (first
            to last receipt, and from the start of publishing), latency from the event's
            createdAt to receipt (mostly queueing, as the events are published at once),
            duplicates, and a sample of signatures verified.

Flags (sizes in brackets are the --quick ones):
  --quick                     smoke run, every size ~10x smaller
  --phases LIST               comma-separated subset of ceiling,single,campaign,webhooks [all]
  --concurrency N             ceiling and single-send workers [64]
  --ceiling-seconds S         ceiling window [10; 2]
  --warmup S                  unmeasured seconds before each window [3; 1]
  --duration S                single-send window [20; 2]
  --campaign-recipients N     campaign size [100000; 10000]
  --batch-size N              recipients per campaign request [1000]
  --campaign-in-flight N      campaign requests at once [8]
  --otp-interval S            seconds between OTPs [0.05]
  --otp-max-in-flight N       unanswered OTPs before ticks are skipped [64]
  --otp-shared-wallet         pay the OTPs from the campaign's wallet; by default they come
                              from another customer, as when someone else's campaign runs
                              (admissions lock their wallet, so sharing one makes OTPs queue
                              behind the campaign's admissions)
  --webhook-events N          events published in the webhooks phase [20000; 2000]
  --drain-timeout S           how long to wait for the carrier (or the webhook receiver) to
                              receive everything [600; 120]
  --receipt-delay S           the carrier simulator's receipt delay [0.05]
  --carrier-rate N            submit_sm/s per bind, 0 for unpaced [0]
  --carrier-window N          outstanding submit_sm per bind [64]
  --carrier-binds N           submit binds per carrier [1]
  --history N                 past messages put in the database, then ANALYZE, before the
                              phases: a platform in service has history and statistics [200000]
  --log-level LEVEL           the services' log level [WARNING]
  --credit UGX                the test wallet's opening credit [100000000]
  --rate-limit N              the test key's requests/s [100000]
  --profile SERVICE           record api_gateway, billing, billing-bulk, sender, sender-priority,
                              webhooks or carrier-simulator with py-spy (needs
                              .venv/bin/py-spy) during --profile-phase
  --profile-phase PHASE       single (the measured window), or campaign or webhooks (from its
                              start) [single]
  --profile-format FORMAT     flamegraph (.svg) or speedscope (.speedscope.json) [flamegraph]
  --profile-seconds S         recording length [the single window; 30 for the others]
  --output PATH               results JSON [bench/results/latest.json]; profiles go beside it
  --keep-logs                 keep the services' logs (always kept when a run fails)

Nothing here asserts a target: the run reports what it measured, including every non-202
status, requests that got no reply, and warnings or errors the services logged.
"""

from __future__ import annotations

import asyncio
import sys

from bench import profiling
from bench.options import parse_options
from bench.report import table, write_json
from bench.run import run


def main() -> None:
    """Parse the flags, run, print the table and the JSON document."""
    options = parse_options()
    if options.profile and not profiling.available():
        sys.exit(f"--profile needs py-spy at {profiling.PY_SPY}")
    results = asyncio.run(run(options))
    document = write_json(results, options.output)
    print(table(results))
    print()
    print(document.decode())
    for phase in ("single", "campaign", "webhooks"):
        profile = (results.get(phase) or {}).get("profile")
        if profile:
            where = profile["file"] or f"not written: {profile['error']}"
            print(f"bench: py-spy profile of {profile['service']}: {where}", file=sys.stderr)
    print(f"bench: results written to {options.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
