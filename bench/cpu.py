"""CPU time per process while the benchmark runs, read from /proc (Linux only).

Sampled in the background four times a second, so any interval a phase reports (its
measured window, a campaign's accept or drain stretch) can be looked up afterwards. Figures
are percent of one core: on a 2-core machine everything together can reach 200.
Postgres and RabbitMQ are counted by process name, since the database and the broker
serve the platform through many processes; Postgres backends connected to other databases
are someone else's work on this shared machine and count under "others".
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")
_TICK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
SAMPLE_INTERVAL = 0.25
# A client backend's title: "postgres: 15/main: <user> <database> <host>(<port>) <state>".
_BACKEND = re.compile(rb"^postgres: [^:]+: \S+ (\S+) (?:\[local\]|\S+\(\d+\))")


@dataclass(frozen=True)
class Sample:
    at: float  # wall time
    # CPU seconds per group, per pid, so processes that start mid-phase count from zero.
    groups: dict[str, dict[int, float]]
    busy: float  # whole-machine CPU seconds not idle
    irq: float  # of which interrupts and softirqs: loopback TCP is mostly here
    steal: float  # seconds the hypervisor gave to other guests


def _cpu_seconds(pid: int | str) -> float | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields after it do not.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime, all threads


def _machine() -> tuple[float, float, float]:
    values = [int(v) for v in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    busy = sum(values[:8]) - idle - steal
    return busy / _TICK, (values[5] + values[6]) / _TICK, steal / _TICK


@dataclass
class CpuMonitor:
    """Tracks named pids and groups of processes found by command name."""

    pids: dict[str, int] = field(default_factory=dict)
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    # A named process that has exited keeps the CPU time it was last seen with: the load
    # process and the ceiling app exit moments after their window closes.
    _last_seen: dict[int, float] = field(default_factory=dict)
    # The platform's database, once there is one; see `_foreign_backend`.
    database: str | None = None
    _foreign: dict[int, bool] = field(default_factory=dict)

    @staticmethod
    def available() -> bool:
        return (_PROC / "stat").exists()

    def sample(self) -> Sample:
        """Read every tracked process now."""
        started = time.time()
        groups: dict[str, dict[int, float]] = {}
        for name, pid in list(self.pids.items()):
            seconds = _cpu_seconds(pid)
            if seconds is None:
                seconds = self._last_seen.get(pid)
            else:
                self._last_seen[pid] = seconds
            groups[name] = {pid: seconds} if seconds is not None else {}
        if self.commands:
            wanted = {comm: name for name, comms in self.commands.items() for comm in comms}
            for name in self.commands:
                groups[name] = {}
            for entry in _PROC.iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    comm = (entry / "comm").read_text().strip()
                except OSError:
                    continue
                if comm not in wanted or self._foreign_backend(comm, entry):
                    continue
                if (seconds := _cpu_seconds(entry.name)) is not None:
                    groups[wanted[comm]][int(entry.name)] = seconds
        busy, irq, steal = _machine()
        return Sample((started + time.time()) / 2, groups, busy, irq, steal)

    def _foreign_backend(self, comm: str, entry: Path) -> bool:
        """A Postgres backend serving a database other than the platform's."""
        if comm != "postgres" or self.database is None:
            return False
        pid = int(entry.name)
        foreign = self._foreign.get(pid)
        if foreign is None:
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                return False
            match = _BACKEND.match(title)
            foreign = match is not None and match.group(1) != self.database.encode()
            self._foreign[pid] = foreign
        return foreign

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.samples.append(await asyncio.to_thread(self.sample))
            await asyncio.sleep(SAMPLE_INTERVAL)

    async def usage_after(self, start: float, end: float) -> dict[str, float] | None:
        """`usage`, once the sampler has read past `end` (a phase has just ended)."""
        if not self.available():
            return None
        for _ in range(8):
            if self.samples and self.samples[-1].at >= end:
                break
            await asyncio.sleep(SAMPLE_INTERVAL / 2)
        return self.usage(start, end)

    def usage(self, start: float, end: float) -> dict[str, float] | None:
        """Percent of one core per group between two wall times, plus the whole machine."""
        before = [s for s in self.samples if s.at <= start]
        after = [s for s in self.samples if s.at >= end]
        if not before or not after:
            return None
        first, last = before[-1], after[0]
        elapsed = last.at - first.at
        if elapsed <= 0:
            return None
        usage: dict[str, float] = {}
        for name, pids in last.groups.items():
            was = first.groups.get(name, {})
            spent = sum(seconds - was.get(pid, 0.0) for pid, seconds in pids.items())
            usage[name] = round(100 * spent / elapsed, 1)
        machine = 100 * (last.busy - first.busy) / elapsed
        irq = 100 * (last.irq - first.irq) / elapsed
        # Everything else that ran: other users of this shared machine, the kernel's threads.
        usage["others"] = round(max(0.0, machine - irq - sum(usage.values())), 1)
        usage["irq"] = round(irq, 1)
        usage["machine"] = round(machine, 1)
        steal = 100 * (last.steal - first.steal) / elapsed
        if steal >= 0.5:
            usage["steal"] = round(steal, 1)
        return usage
