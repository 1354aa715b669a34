"""The human table and the JSON document a run ends with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from bench.stats import ratio

CPU_COLUMNS = (
    ("api_gateway", "gateway"),
    ("billing", "billing"),
    ("billing-bulk", "billing-b"),
    ("sender", "sender"),
    ("sender-priority", "sender-p"),
    ("webhooks", "webhooks"),
    ("carrier-simulator", "carrier"),
    ("ceiling", "ceiling"),
    ("load", "load"),
    ("postgres", "postgres"),
    ("rabbitmq", "rabbitmq"),
    ("bench", "bench"),
    ("others", "others"),
    ("irq", "irq"),
    ("machine", "machine"),
)


def add_ratios(results: dict[str, Any]) -> None:
    """Each throughput as a fraction of the ceiling's requests/s."""
    ceiling = results.get("ceiling") or {}
    base = ceiling.get("requests_per_s")
    if plain := ceiling.get("asyncio_loop"):
        plain["requests_per_s_vs_ceiling"] = ratio(plain["requests_per_s"], base)
    single = results.get("single")
    if single:
        single["accepted_per_s_vs_ceiling"] = ratio(single["accepted_per_s"], base)
        single["carrier_submits_per_s_vs_ceiling"] = ratio(single["carrier_submits_per_s"], base)
    campaign = results.get("campaign")
    if campaign:
        for key in ("accepted_recipients_per_s", "submitted_recipients_per_s"):
            campaign[f"{key}_vs_ceiling"] = ratio(campaign[key], base)
    webhooks = results.get("webhooks")
    if webhooks:
        for key in ("deliveries_per_s", "deliveries_per_s_end_to_end"):
            webhooks[f"{key}_vs_ceiling"] = ratio(webhooks[key], base)


# CPU of processes that are not the platform or its simulators: the load generator, the
# benchmark itself, the bare ceiling server, and other work on a shared machine.
_NOT_PLATFORM = ("load", "bench", "ceiling", "others")


def _platform_cores(cpu: dict[str, float] | None) -> float | None:
    """Cores the platform and its simulators used on average over a window."""
    if not cpu or cpu.get("machine") is None:
        return None
    return (cpu["machine"] - sum(cpu.get(key) or 0.0 for key in _NOT_PLATFORM)) / 100


def add_cpu_costs(results: dict[str, Any]) -> None:
    """CPU per message, and the most per second that cost allows on this machine's cores.

    Throughput falls when the platform costs more, but also when other work on a shared
    machine takes cores from it. CPU per message leaves that work and idle time out, so it
    says what a change cost (a machine slowed by its neighbours still inflates it). The
    bound is the throughput with every core busy with this work and nothing else.
    """
    cores = (results.get("machine") or {}).get("usable_cores") or None
    single = results.get("single")
    if single and single.get("accepted_per_s"):
        used = _platform_cores(single.get("cpu"))
        if used:
            ms = used * 1000 / single["accepted_per_s"]
            single["cpu_ms_per_send"] = round(ms, 3)
            single["cpu_bound_sends_per_s"] = round(cores * 1000 / ms, 1) if cores else None
    campaign = results.get("campaign")
    if campaign and campaign.get("accept_s") and campaign.get("submit_s"):
        accepting = _platform_cores(campaign.get("cpu_while_accepting"))
        draining = _platform_cores(campaign.get("cpu_while_draining"))
        if accepting is not None and draining is not None:
            drain_s = max(campaign["submit_s"] - campaign["accept_s"], 0.0)
            core_s = accepting * campaign["accept_s"] + draining * drain_s
            ms = core_s * 1000 / campaign["accepted_recipients"]
            campaign["cpu_ms_per_recipient"] = round(ms, 3)
            bound = round(cores * 1000 / ms, 1) if cores and ms else None
            campaign["cpu_bound_recipients_per_s"] = bound


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _trio(latency: dict[str, Any], keys: tuple[str, ...] = ("p50_ms", "p99_ms", "max_ms")) -> str:
    return " / ".join(_num(latency.get(k)) for k in keys)


def _failures(statuses: dict[str, int], errors: dict[str, int], expected: str = "202") -> str:
    parts = [f"HTTP {code} x{n}" for code, n in statuses.items() if code != expected]
    parts += [f"{name} x{n}" for name, n in errors.items()]
    return ", ".join(parts) or "none"


def _debit(debit: dict[str, Any]) -> str:
    verdict = "ok" if debit["ok"] else "MISMATCH"
    text = f"{verdict}: balance fell {debit['balance_drop']:,}"
    text += f", replies said {debit['cost_in_replies']:,}"
    if "35_x_accepted" in debit:
        text += f", 35 x accepted = {debit['35_x_accepted']:,}"
    return text


Row = tuple[str, str, str]  # figure, value, fraction of the ceiling's requests/s
_VALUE_WIDTH = 24


def _drained(drained: bool) -> str:
    return "" if drained else " (NOT drained)"


def _ceiling_rows(ceiling: dict[str, Any]) -> list[Row]:
    rows = [
        ("requests/s", _num(ceiling["requests_per_s"]), "1.000"),
        ("latency p50 / p99 / max ms", _trio(ceiling["latency"]), ""),
        ("failures", _failures(ceiling["statuses"], ceiling["errors"], "200"), ""),
    ]
    if plain := ceiling.get("asyncio_loop"):
        rows += [
            (
                "on asyncio's own loop, requests/s",
                _num(plain["requests_per_s"]),
                _num(ratio(plain["requests_per_s"], ceiling["requests_per_s"]), 3),
            ),
            ("  failures", _failures(plain["statuses"], plain["errors"], "200"), ""),
        ]
    return rows


def _single_rows(single: dict[str, Any], cores: int | None) -> list[Row]:
    return [
        (
            "accepted (202) sends/s",
            _num(single["accepted_per_s"]),
            _num(single.get("accepted_per_s_vs_ceiling"), 3),
        ),
        ("latency p50 / p99 / max ms", _trio(single["latency"]), ""),
        ("non-202 / no reply", _failures(single["statuses"], single["errors"]), ""),
        (
            "carrier submit_sm/s, same window",
            _num(single["carrier_submits_per_s"]),
            _num(single.get("carrier_submits_per_s_vs_ceiling"), 3),
        ),
        ("backlog at window close", _num(single["backlog_at_close"]), ""),
        ("carrier had all after", f"{single['drain_s']:.2f}s" + _drained(single["drained"]), ""),
        ("debit", _debit(single["debit"]), ""),
        *_cost_rows(single, "send", "cpu_ms_per_send", "cpu_bound_sends_per_s", cores),
    ]


def _campaign_rows(campaign: dict[str, Any], cores: int | None) -> list[Row]:
    times = f"{_num(campaign['accept_s'], 2)} / {_num(campaign['submit_s'], 2)}"
    return [
        (
            "accepted recipients/s",
            _num(campaign["accepted_recipients_per_s"]),
            _num(campaign.get("accepted_recipients_per_s_vs_ceiling"), 3),
        ),
        (
            "received by carrier recipients/s",
            _num(campaign["submitted_recipients_per_s"]),
            _num(campaign.get("submitted_recipients_per_s_vs_ceiling"), 3),
        ),
        ("carrier peak submit_sm/s (1s)", _num(campaign["carrier_peak_submits_per_s"]), ""),
        (
            "receipts stored recipients/s (all after s)",
            f"{_num(campaign['receipts_stored_per_s'])} ({_num(campaign['receipts_s'], 2)})",
            "",
        ),
        (
            "receipts not yet stored when submits ended",
            _num(campaign["receipts_unstored_when_submitted"]),
            "",
        ),
        ("accepted / received after s", times + _drained(campaign["drained"]), ""),
        ("request latency p50 / p99 / max ms", _trio(campaign["request_latency"]), ""),
        ("non-202 / no reply", _failures(campaign["statuses"], campaign["errors"]), ""),
        ("debit, campaign + OTPs", _debit(campaign["debit"]), ""),
        *_cost_rows(
            campaign, "recipient", "cpu_ms_per_recipient", "cpu_bound_recipients_per_s", cores
        ),
    ]


def _cost_rows(
    phase: dict[str, Any], unit: str, cost: str, bound: str, cores: int | None
) -> list[Row]:
    """What `add_cpu_costs` found, when the CPU was measured."""
    if phase.get(cost) is None:
        return []
    return [
        (f"CPU per {unit}, platform + simulators, ms", _num(phase[cost], 3), ""),
        (f"at that cost, {unit}s/s with all {cores} cores busy", _num(phase.get(bound)), ""),
    ]


def _otp_rows(otps: dict[str, Any]) -> list[Row]:
    return [
        ("measured / accepted", f"{otps['measured']:,} / {otps['accepted']:,}", ""),
        ("202 -> carrier p50 / p99 / max ms", _trio(otps["carrier_latency"]), ""),
        ("  while campaign accepted", _trio(otps["carrier_latency_while_accepting"]), ""),
        ("  while campaign drained", _trio(otps["carrier_latency_while_draining"]), ""),
        ("202 -> status stored p50 / p99 / max ms", _trio(otps["status_latency"]), ""),
        ("  while campaign accepted", _trio(otps["status_latency_while_accepting"]), ""),
        ("  while campaign drained", _trio(otps["status_latency_while_draining"]), ""),
        ("API accept p50 / p99 / max ms", _trio(otps["accept_latency"]), ""),
        ("  while campaign accepted", _trio(otps["accept_latency_while_accepting"]), ""),
        ("  while campaign drained", _trio(otps["accept_latency_while_draining"]), ""),
        ("non-202 / no reply", _failures(otps["statuses"], otps["errors"]), ""),
    ]


def _webhook_rows(webhooks: dict[str, Any]) -> list[Row]:
    signatures = webhooks["signatures"]
    received = f"{webhooks['deliveries']:,} / {webhooks['distinct']:,} / {webhooks['duplicates']:,}"
    missing = webhooks["missing"]
    publish_s = f"{webhooks['publish_s']:.2f}s"
    return [
        (
            "deliveries/s, first to last receipt",
            _num(webhooks["deliveries_per_s"]),
            _num(webhooks.get("deliveries_per_s_vs_ceiling"), 3),
        ),
        (
            "deliveries/s, publish to last receipt",
            _num(webhooks["deliveries_per_s_end_to_end"]),
            _num(webhooks.get("deliveries_per_s_end_to_end_vs_ceiling"), 3),
        ),
        ("events published / confirmed after", f"{webhooks['events']:,} / {publish_s}", ""),
        (
            "received / distinct / duplicates",
            received + (f" ({missing:,} MISSING)" if missing else ""),
            "",
        ),
        ("event -> receipt p50 / p99 / max ms", _trio(webhooks["latency"]), ""),
        ("signatures verified", f"{signatures['ok']} of {signatures['checked']}", ""),
    ]


def table(results: dict[str, Any]) -> str:
    """Each phase as rows of figure, value and fraction of the ceiling's requests/s."""
    sections: list[tuple[str, list[Row]]] = []
    cores = (results.get("machine") or {}).get("usable_cores")
    if ceiling := results.get("ceiling"):
        head = f"ceiling: bare aiohttp, c={ceiling['concurrency']}, {ceiling['window_s']:.0f}s"
        sections.append((head, _ceiling_rows(ceiling)))
    if single := results.get("single"):
        head = f"single sends: c={single['concurrency']}, {single['window_s']:.0f}s"
        sections.append((head, _single_rows(single, cores)))
    if campaign := results.get("campaign"):
        head = (
            f"campaign: {campaign['requests']} requests x {campaign['batch']} recipients,"
            f" {campaign['in_flight']} in flight"
        )
        sections.append((head, _campaign_rows(campaign, cores)))
    if otps := results.get("otp_during_campaign"):
        wallet = (campaign or {}).get("otp_wallet", "campaign's")
        head = f"OTPs during the campaign: priority high, paid from the {wallet} wallet"
        sections.append((head, _otp_rows(otps)))
    if webhooks := results.get("webhooks"):
        head = (
            f"webhooks: message.delivered to one endpoint on loopback,"
            f" at most {webhooks['endpoint_concurrency']} attempts in flight"
        )
        sections.append((head, _webhook_rows(webhooks)))
    width = max((len(f) for _, rows in sections for f, _, _ in rows), default=0)
    lines = [_machine_line(results.get("machine") or {}), ""]
    lines.append(f"{'':<{width + 2}}  {'value':>{_VALUE_WIDTH}}  vs ceiling")
    for head, rows in sections:
        lines.append(head)
        for figure, value, vs_ceiling in rows:
            # Long texts (failures, debit checks) are left as they are rather than padded.
            shown = f"{value:>{_VALUE_WIDTH}}" if len(value) <= _VALUE_WIDTH else value
            lines.append(f"  {figure:<{width}}  {shown}  {vs_ceiling:>10}".rstrip())
    lines += ["", *_cpu_table(results), *_log_lines(results)]
    return "\n".join(lines)


def _machine_line(machine: dict[str, Any]) -> str:
    return (
        f"machine: {machine.get('cores')} cores ({machine.get('cpu')}), "
        f"load {machine.get('load_average_at_start')}, Python {machine.get('python')}, "
        f"Postgres {machine.get('postgres')}, RabbitMQ {machine.get('rabbitmq')}"
    )


def _cpu_table(results: dict[str, Any]) -> list[str]:
    found: list[tuple[str, dict[str, float] | None]] = []
    if results.get("ceiling"):
        found.append(("ceiling window", results["ceiling"]["cpu"]))
    if results.get("single"):
        found.append(("single-send window", results["single"]["cpu"]))
    if results.get("campaign"):
        found.append(("campaign accepting", results["campaign"]["cpu_while_accepting"]))
        found.append(("campaign draining", results["campaign"]["cpu_while_draining"]))
    if results.get("webhooks"):
        found.append(("webhooks window", results["webhooks"]["cpu"]))
    spans = [(name, cpu) for name, cpu in found if cpu]
    if not spans:
        return []
    columns = [(key, label) for key, label in CPU_COLUMNS if any(key in cpu for _, cpu in spans)]
    lines = ["CPU, % of one core " + " ".join(f"{label:>8}" for _, label in columns)]
    for name, cpu in spans:
        values = " ".join(f"{_num(cpu.get(key)):>8}" for key, _ in columns)
        lines.append(f"  {name:<17}" + values)
    lines.append(
        "  (others: processes outside this run, the machine being shared; irq: kernel"
        " interrupt time, mostly loopback TCP)"
    )
    return lines


def _log_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for phase in ("single", "campaign", "webhooks"):
        phase_result = results.get(phase) or {}
        for service, found in (phase_result.get("service_logs") or {}).items():
            lines.append(
                f"{phase}: {service} logged {found['errors']} errors, {found['warnings']} warnings"
            )
            lines += [f"    {sample}" for sample in found["samples"]]
        for service, code in (phase_result.get("exited") or {}).items():
            lines.append(f"{phase}: {service} EXITED with code {code}")
    return ["", *lines] if lines else []


def write_json(results: dict[str, Any], path: Path) -> bytes:
    """Write the results document; return it."""
    document = orjson.dumps(results, option=orjson.OPT_INDENT_2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(document + b"\n")
    return document
