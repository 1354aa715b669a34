"""The benchmark's CPU cost per message, the throughput bound it implies, and OTP latencies."""

from __future__ import annotations

from typing import Any

import pytest

from bench import otp
from bench.report import add_cpu_costs, add_ratios, table


def _results(**phases: Any) -> dict[str, Any]:
    return {
        "ceiling": None,
        "single": None,
        "campaign": None,
        "otp_during_campaign": None,
        "webhooks": None,
        "machine": {"cores": 2, "usable_cores": 2},
        **phases,
    }


def _single(cpu: dict[str, float] | None) -> dict[str, Any]:
    return {
        "concurrency": 64,
        "window_s": 20.0,
        "accepted_per_s": 1000.0,
        "latency": {},
        "statuses": {"202": 20000},
        "errors": {},
        "carrier_submits_per_s": 1000.0,
        "backlog_at_close": 0,
        "drain_s": 0.1,
        "drained": True,
        "debit": {"balance_drop": 1, "cost_in_replies": 1, "ok": True},
        "cpu": cpu,
    }


def test_a_send_costs_the_platforms_share_of_the_machine() -> None:
    # 170% of a core busy, of which 10 points are the load generator and 10 another tenant.
    results = _results(single=_single({"machine": 170.0, "load": 10.0, "others": 10.0}))
    add_cpu_costs(results)
    assert results["single"]["cpu_ms_per_send"] == pytest.approx(1.5)
    assert results["single"]["cpu_bound_sends_per_s"] == pytest.approx(2000 / 1.5, abs=0.1)
    shown = table(results)
    assert "CPU per send, platform + simulators, ms" in shown
    assert "1.500" in shown


def test_a_campaign_adds_its_accepting_and_draining_stretches() -> None:
    campaign = {
        "accepted_recipients": 100_000,
        "accept_s": 8.0,
        "submit_s": 12.0,
        # 8 s at 1.9 cores, then 4 s at 1.6 cores: 21.6 core-seconds for 100k.
        "cpu_while_accepting": {"machine": 195.0, "bench": 5.0},
        "cpu_while_draining": {"machine": 160.0},
    }
    results = _results(campaign=campaign)
    add_cpu_costs(results)
    assert campaign["cpu_ms_per_recipient"] == pytest.approx(0.216)
    assert campaign["cpu_bound_recipients_per_s"] == pytest.approx(2000 / 0.216, abs=0.1)


def test_the_plain_asyncio_ceiling_is_shown_beside_the_uvloop_one() -> None:
    window = {"latency": {}, "statuses": {"200": 100}, "errors": {}}
    ceiling = {
        "concurrency": 64,
        "window_s": 10.0,
        "requests_per_s": 16000.0,
        "cpu": None,
        **window,
        "asyncio_loop": {"requests_per_s": 12000.0, **window},
    }
    results = _results(ceiling=ceiling, single=_single(None))
    add_ratios(results)
    assert ceiling["asyncio_loop"]["requests_per_s_vs_ceiling"] == pytest.approx(0.75)
    assert results["single"]["accepted_per_s_vs_ceiling"] == pytest.approx(0.062)  # 3 places
    line = next(row for row in table(results).splitlines() if "asyncio's own loop" in row)
    assert "12,000" in line and "0.750" in line


def test_no_cost_is_claimed_without_a_cpu_measurement() -> None:
    results = _results(single=_single(None))
    add_cpu_costs(results)
    assert "cpu_ms_per_send" not in results["single"]
    assert "CPU per send" not in table(results)


def test_an_otps_status_latency_runs_from_its_202_to_its_stored_receipt() -> None:
    sent = {
        # (recipient, accept latency s, wall time of the 202)
        "accepted": [("+256772000001", 0.01, 100.0), ("+256772000002", 0.02, 106.0)],
        "statuses": {"202": 2},
        "errors": {},
        "skipped": 0,
        "samples": [],
    }
    received = {"+256772000001": 100.002, "+256772000002": 106.001}
    settled = {"+256772000001": 100.080}  # the second one's receipt is not stored
    summary = otp.summarise(sent, received, settled, accepting_until=105.0, finished_at=110.0)
    assert summary["status_latency"]["count"] == 1
    assert summary["status_latency"]["p50_ms"] == pytest.approx(80.0)
    assert summary["status_latency_while_accepting"]["count"] == 1
    assert summary["status_latency_while_draining"]["count"] == 0
    assert summary["status_not_stored"] == 1
    shown = table(_results(otp_during_campaign=summary))
    assert "202 -> status stored p50 / p99 / max ms" in shown
    assert "80.0" in shown
