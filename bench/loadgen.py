"""The load generator: `hey`, run as a subprocess, its report parsed into numbers."""

from __future__ import annotations

import re
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from procs import cores_by_process, tree_cpu

from stackcast.service.metrics import sample_total

IDLE_SECONDS = 3.0  # server CPU is sampled this long with no load, before the first run


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table; `-` for missing or NaN."""
    return "-" if value is None or value != value else f"{value:.{digits}f}"


@dataclass
class HeyResult:
    requests: int
    total_s: float
    rps_hey: float
    p50_ms: float | None
    p99_ms: float | None
    status: dict[str, int]
    errors: dict[str, int]
    hey_cpu_s: float
    raw: str = field(repr=False)

    @property
    def ok(self) -> int:
        return self.status.get("200", 0)

    @property
    def failed(self) -> int:
        return sum(v for k, v in self.status.items() if k != "200") + sum(self.errors.values())


def parse_hey(text: str) -> dict[str, Any]:
    def seconds(label: str) -> float | None:
        match = re.search(rf"^\s*{re.escape(label)}\s+in\s+([0-9.]+)\s+secs", text, re.M)
        return float(match.group(1)) if match else None

    total = re.search(r"^\s*Total:\s+([0-9.]+)\s+secs", text, re.M)
    rps = re.search(r"^\s*Requests/sec:\s+([0-9.]+)", text, re.M)
    status: dict[str, int] = {}
    errors: dict[str, int] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("Status code distribution"):
            section = status
            continue
        if line.startswith("Error distribution"):
            section = errors
            continue
        if section is None:
            continue
        match = re.match(r"^\s*\[(\d+)\]\s+(.*)$", line)
        if match is None:
            if line.strip() and not line.startswith(" "):
                section = None
            continue
        if section is status:
            status[match.group(1)] = int(match.group(2).split()[0])
        else:
            errors[match.group(2).strip()[:200]] = int(match.group(1))
    p50, p99 = seconds("50%"), seconds("99%")
    return {
        "total_s": float(total.group(1)) if total else float("nan"),
        "rps_hey": float(rps.group(1)) if rps else float("nan"),
        "p50_ms": p50 * 1e3 if p50 is not None else None,
        "p99_ms": p99 * 1e3 if p99 is not None else None,
        "status": status,
        "errors": errors,
    }


def run_hey(
    url: str, body: Path, requests: int, concurrency: int, hey_cpus: int | None
) -> HeyResult:
    command = ["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST"]
    command += ["-T", "application/json", "-D", str(body), "-t", "60"]
    if hey_cpus:
        command += ["-cpus", str(hey_cpus)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"hey failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return HeyResult(requests=requests, hey_cpu_s=cpu, raw=done.stdout, **parse_hey(done.stdout))


@dataclass(frozen=True)
class Scenario:
    concurrency: int
    series: int
    requests: int

    @property
    def key(self) -> str:
        return f"c={self.concurrency}, {self.series} series/req"


@dataclass
class Run:
    server: str
    concurrency: int
    series: int
    requests: int
    ok: int
    errors: int
    total_s: float
    rps: float
    series_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    server_cores: float
    server_cores_by_process: dict[str, float]
    hey_cores: float
    requests_per_pass: float | None
    status: dict[str, int]
    error_messages: dict[str, int]


def measure(
    server: str,
    process: subprocess.Popen[bytes],
    url: str,
    body_for: Callable[[int], Path],
    scenarios: list[Scenario],
    warmup: int,
    hey_cpus: int | None,
    metrics_url: str | None,
    idle_cores: dict[str, float],
) -> list[Run]:
    idle_before = tree_cpu(process.pid)
    time.sleep(IDLE_SECONDS)
    idle = cores_by_process(idle_before, tree_cpu(process.pid), IDLE_SECONDS)
    busy = [f"{cores:.2f} {label}" for label, cores in idle.items() if cores >= 0.01]
    print(
        f"  idle CPU over {IDLE_SECONDS:.0f} s: {sum(idle.values()):.2f} cores "
        f"({'; '.join(busy) or 'none'})",
        flush=True,
    )
    idle_cores[server] = sum(idle.values())
    runs = []
    for scenario in scenarios:
        c, body = scenario.concurrency, body_for(scenario.series)
        warm_n = max(warmup, 2 * c) // c * c
        warm = run_hey(url, body, warm_n, c, hey_cpus)
        if warm.failed:
            print(f"  ! warmup {scenario.key}: {warm.status} {warm.errors}", flush=True)
        before_metrics = httpx.get(metrics_url, timeout=10).text if metrics_url else ""
        cpu_before = tree_cpu(process.pid)
        result = run_hey(url, body, scenario.requests, c, hey_cpus)
        cpu_after = tree_cpu(process.pid)
        per_pass = None
        if metrics_url:
            after_metrics = httpx.get(metrics_url, timeout=10).text
            name = "stackcast_batch_requests"
            passes = sample_total(after_metrics, f"{name}_count") - sample_total(
                before_metrics, f"{name}_count"
            )
            batched = sample_total(after_metrics, f"{name}_sum") - sample_total(
                before_metrics, f"{name}_sum"
            )
            per_pass = batched / passes if passes else None
        rps = result.ok / result.total_s if result.total_s > 0 else float("nan")
        by_process = cores_by_process(cpu_before, cpu_after, result.total_s)
        run = Run(
            server=server,
            concurrency=c,
            series=scenario.series,
            requests=scenario.requests,
            ok=result.ok,
            errors=result.failed,
            total_s=result.total_s,
            rps=rps,
            series_per_s=rps * scenario.series,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            server_cores=sum(by_process.values()),
            server_cores_by_process=by_process,
            hey_cores=result.hey_cpu_s / result.total_s,
            requests_per_pass=per_pass,
            status=result.status,
            error_messages=result.errors,
        )
        runs.append(run)
        extra = f", {per_pass:.1f} req/pass" if per_pass else ""
        print(
            f"  {scenario.key}: {result.requests} req in {result.total_s:.1f} s, "
            f"{rps:.1f} req/s, p50 {fmt(result.p50_ms)} ms, p99 {fmt(result.p99_ms)} ms, "
            f"errors {result.failed}, server {run.server_cores:.2f} cores, "
            f"hey {run.hey_cores:.2f} cores{extra}",
            flush=True,
        )
        busy = [f"{cores:.2f} {label}" for label, cores in by_process.items() if cores >= 0.02]
        print("    server CPU by process: " + "; ".join(busy), flush=True)
        if result.errors:
            print(f"    error distribution: {result.errors}", flush=True)
    return runs
