"""Serving throughput: the bare model vs `stackcast serve` vs `mlflow models serve`.

Registers one model built from the default config (`configs/m4_hourly.yaml`, untrained weights
from a fixed seed: throughput does not depend on the weights) as `bench@champion` v1 in a fresh
temporary MLflow store, then

1. times the bare model's batched forward pass in this process (the ceiling),
2. serves the same version with `stackcast serve`, then with `mlflow models serve`, one at a
   time, checks one answer of each against the in-process model, and drives each with `hey`
   (same request bodies, same concurrency levels, same request counts),
3. prints markdown tables and, with `--json PATH`, writes every figure as JSON.

Run from the repository root:

    .venv/bin/python bench/serve.py [--requests 2000] [--concurrency 1 8 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # `mlflow models serve` execs uvicorn from here
MODEL_NAME = "bench"
ALIAS = "champion"
SEED = 0
BATCH_SIZES = (1, 8, 64, 256)
RTOL = 1e-4
START_TIMEOUT = 240.0
STOP_TIMEOUT = 60.0
IDLE_SECONDS = 3.0  # server CPU is sampled this long with no load, before the first run


# --- machine ---------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import litserve
    import mlflow
    import torch

    cpu_model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    return {
        "nproc": int(nproc),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mlflow": mlflow.__version__,
        "litserve": litserve.__version__,
        "hey": shutil.which("hey"),
        "platform": platform.platform(),
    }


# --- the registered model --------------------------------------------------------------------


@dataclass
class Store:
    directory: Path
    tracking_uri: str
    version: str


def register_bench_model(directory: Path) -> tuple[Store, Any]:
    """Log the default config's model (untrained, seed SEED) as `bench@champion`."""
    import mlflow
    import torch
    from mlflow.tracking import MlflowClient

    from models import StackedRNNForecaster
    from training.config import load_config
    from training.registry import log_forecaster

    config = load_config().model  # configs/m4_hourly.yaml
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")  # created now, with its artifact root under the cwd (tmp)
    torch.manual_seed(SEED)
    model = StackedRNNForecaster(config).eval()
    example = np.random.default_rng(SEED).uniform(50, 500, (2, config.input_size))
    with mlflow.start_run(run_name="bench-untrained"):
        model_uri = log_forecaster(model, example.astype(np.float32), "model")
    version = mlflow.register_model(model_uri, MODEL_NAME).version
    MlflowClient().set_registered_model_alias(MODEL_NAME, ALIAS, version)
    return Store(directory, uri, str(version)), model


def bare_throughput(
    model: Any, input_size: int, repeats: int, min_run_seconds: float
) -> list[dict[str, Any]]:
    """Median forward time per batch size; each timed run loops until `min_run_seconds`."""
    import torch

    rng = np.random.default_rng(1)
    results = []
    with torch.inference_mode():
        for size in BATCH_SIZES:
            x = torch.from_numpy(rng.uniform(50, 500, (size, input_size)).astype(np.float32))
            for _ in range(5):
                model(x)
            start, calls = time.perf_counter(), 0
            while time.perf_counter() - start < min_run_seconds / 4:
                model(x)
                calls += 1
            per_run = max(1, int(calls * 4))  # about min_run_seconds per timed run
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(per_run):
                    model(x)
                times.append((time.perf_counter() - start) / per_run)
            median = statistics.median(times)
            results.append(
                {
                    "batch_size": size,
                    "ms_per_forward": median * 1e3,
                    "series_per_s": size / median,
                    "calls_per_run": per_run,
                    "runs": repeats,
                    "spread_pct": 100 * (max(times) - min(times)) / median,
                }
            )
            print(
                f"  batch {size:>4}: {median * 1e3:8.3f} ms/forward, "
                f"{size / median:10.0f} series/s ({repeats} runs x {per_run} calls)",
                flush=True,
            )
    return results


# --- request bodies --------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    series: int
    windows: np.ndarray  # (series, input_size) float32, exactly what the model reads
    stackcast: Path
    mlflow: Path


def write_payloads(
    directory: Path, counts: list[int], input_size: int, horizon: int
) -> dict[int, Payload]:
    rng = np.random.default_rng(7)
    payloads = {}
    for n in sorted(set(counts)):
        histories = rng.uniform(50, 500, (n, input_size)).round(3)
        series = [
            {"id": f"H{i + 1}", "history": h.tolist(), "horizon": horizon}
            for i, h in enumerate(histories)
        ]
        stackcast = directory / f"stackcast_{n}.json"
        stackcast.write_text(json.dumps({"series": series}))
        mlflow_body = directory / f"mlflow_{n}.json"
        mlflow_body.write_text(json.dumps({"inputs": histories.tolist()}))
        payloads[n] = Payload(n, histories.astype(np.float32), stackcast, mlflow_body)
    return payloads


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    skip = ("MLFLOW_", "STACKCAST_", "PROMETHEUS_MULTIPROC_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of process group `pgid`."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return members


def stop_group(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM the whole process group and wait for every member; SIGKILL what is left."""
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    started = time.monotonic()
    try:
        process.wait(timeout=STOP_TIMEOUT)
        outcome = f"leader exited with {process.returncode} after SIGTERM"
    except subprocess.TimeoutExpired:
        outcome = f"leader still running after {STOP_TIMEOUT:.0f} s"
    while group_members(pgid) and time.monotonic() - started < STOP_TIMEOUT:
        time.sleep(0.2)
    left = group_members(pgid)
    if left:
        names = sorted({p.name() for p in left})
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        outcome += f"; {len(left)} group member(s) {names} SIGKILLed after {STOP_TIMEOUT:.0f} s"
    else:
        outcome += f"; whole group gone after {time.monotonic() - started:.1f} s"
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    return outcome


@contextmanager
def running_server(
    name: str, command: list[str], env: dict[str, str], health_url: str, log_path: Path, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` in its own process group, wait for `health_url`, always stop the group."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            started = time.monotonic()
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode} before it was healthy:\n"
                        + log_path.read_text()[-3000:]
                    )
                try:
                    if httpx.get(health_url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() - started > START_TIMEOUT:
                    raise RuntimeError(
                        f"{name} not healthy after {START_TIMEOUT:.0f} s:\n"
                        + log_path.read_text()[-3000:]
                    )
                time.sleep(0.25)
            print(f"  {name} healthy after {time.monotonic() - started:.1f} s", flush=True)
            yield process
        finally:
            print(f"  {name}: {stop_group(process)}", flush=True)


def tree_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """pid -> (label, user + system CPU seconds) of a process and its descendants alive now."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            words = [Path(w).name if w.startswith("/") else w for w in proc.cmdline()[:4]]
            label = f"{proc.pid} (parent {proc.ppid()}): {' '.join(words)[:70]}"
            out[proc.pid] = (label, times.user + times.system)
        except psutil.NoSuchProcess:
            pass
    return out


def cores_by_process(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], seconds: float
) -> dict[str, float]:
    """CPU cores used per process between two `tree_cpu` snapshots, busiest first."""
    used = {
        label: (cpu - before.get(pid, (label, 0.0))[1]) / seconds
        for pid, (label, cpu) in after.items()
    }
    return dict(sorted(used.items(), key=lambda item: -item[1]))


def metric_value(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- hey -------------------------------------------------------------------------------------


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
    if hey_cpus is not None:
        command += ["-cpus", str(hey_cpus)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"hey failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return HeyResult(requests=requests, hey_cpu_s=cpu, raw=done.stdout, **parse_hey(done.stdout))


# --- one server under load -------------------------------------------------------------------


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
            passes = metric_value(after_metrics, f"{name}_count") - metric_value(
                before_metrics, f"{name}_count"
            )
            batched = metric_value(after_metrics, f"{name}_sum") - metric_value(
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


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-12)))


def check_stackcast(url: str, payloads: dict[int, Payload], reference: dict[int, np.ndarray]):
    """One request per body; shapes and values against the in-process model."""
    answers = {}
    for n, payload in payloads.items():
        response = httpx.post(
            url,
            content=payload.stackcast.read_bytes(),
            headers={"content-type": "application/json"},
            timeout=60,
        )
        if response.status_code != 200:
            raise RuntimeError(f"stackcast check: {response.status_code} {response.text[:500]}")
        forecasts = response.json()["forecasts"]
        got = np.asarray([f["mean"] for f in forecasts], dtype=np.float64)
        ids = [f["id"] for f in forecasts]
        if got.shape != reference[n].shape or ids != [f"H{i + 1}" for i in range(n)]:
            raise RuntimeError(f"stackcast check: shape {got.shape}, ids {ids[:3]}...")
        answers[n] = got
    return answers


def check_mlflow(url: str, payloads: dict[int, Payload], reference: dict[int, np.ndarray]):
    answers = {}
    for n, payload in payloads.items():
        response = httpx.post(
            url,
            content=payload.mlflow.read_bytes(),
            headers={"content-type": "application/json"},
            timeout=60,
        )
        if response.status_code != 200:
            raise RuntimeError(f"mlflow check: {response.status_code} {response.text[:500]}")
        got = np.asarray(response.json()["predictions"], dtype=np.float64)
        if got.shape != reference[n].shape:
            raise RuntimeError(f"mlflow check: shape {got.shape} != {reference[n].shape}")
        answers[n] = got
    return answers


# --- output ----------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    print("\n## Machine\n")
    print(
        f"- {m['nproc']} CPUs (nproc), {m['cpu_model']}; Python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} threads), mlflow {m['mlflow']}, "
        f"litserve {m['litserve']}"
    )
    print(f"- model: {report['model']['description']}")
    print(f"- stackcast settings: {report['stackcast_env']}")
    print(f"- mlflow models serve: --env-manager local, {report['mlflow_workers']} worker(s)")
    for server, cores in report["server_idle_cores"].items():
        print(f"- {server} idle (no requests, {IDLE_SECONDS:.0f} s): {cores:.2f} CPU cores")

    print("\n## Bare model (in-process, torch.inference_mode, CPU)\n")
    print("| batch size | ms / forward | series/s |")
    print("|---:|---:|---:|")
    for row in report["bare"]:
        print(f"| {row['batch_size']} | {row['ms_per_forward']:.3f} | {row['series_per_s']:.0f} |")

    print("\n## Correctness check (one request per body vs the in-process model)\n")
    for line in report["checks"]:
        print(f"- {line}")

    print("\n## Served throughput (hey)\n")
    print(
        "| server | concurrency | series/request | requests | requests/s | series/s "
        "| p50 ms | p99 ms | errors | server CPU (cores) | hey CPU (cores) | requests/pass |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in report["runs"]:
        print(
            f"| {run['server']} | {run['concurrency']} | {run['series']} | {run['requests']} "
            f"| {run['rps']:.1f} | {run['series_per_s']:.1f} | {fmt(run['p50_ms'])} "
            f"| {fmt(run['p99_ms'])} | {run['errors']} | {run['server_cores']:.2f} "
            f"| {run['hey_cores']:.2f} | {fmt(run['requests_per_pass'])} |"
        )

    if report["ratios"]:
        print("\n## stackcast / MLflow (requests/s)\n")
        print("| scenario | stackcast req/s | MLflow req/s | ratio |")
        print("|---|---:|---:|---:|")
        for row in report["ratios"]:
            print(
                f"| {row['scenario']} | {row['stackcast_rps']:.1f} | {row['mlflow_rps']:.1f} "
                f"| {fmt(row['ratio'], 2)} |"
            )

    eff = report["efficiency"]
    print("\n## Efficiency\n")
    for line in eff["lines"]:
        print(f"- {line}")


def efficiency(bare: list[dict[str, Any]], runs: list[Run]) -> dict[str, Any]:
    best_bare = max(bare, key=lambda r: r["series_per_s"])
    out: dict[str, Any] = {"bare_best": best_bare, "lines": []}
    for server in ("stackcast", "mlflow"):
        mine = [r for r in runs if r.server == server and r.ok]
        if not mine:
            continue
        best = max(mine, key=lambda r: r.series_per_s)
        fraction = best.series_per_s / best_bare["series_per_s"]
        out[server] = {"best_run": asdict(best), "fraction_of_bare": fraction}
        out["lines"].append(
            f"{server}: best {best.series_per_s:.0f} series/s (c={best.concurrency}, "
            f"{best.series} series/req) = {100 * fraction:.1f}% of the bare model's best "
            f"batched {best_bare['series_per_s']:.0f} series/s (batch {best_bare['batch_size']})"
        )
    return out


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        nargs="+",
        default=[3000, 6000, 8000],
        help="requests per measured run with 1 series/request: one value for every concurrency "
        "level or one per level (each rounded down to a multiple of c, as hey does)",
    )
    parser.add_argument(
        "--requests-multi",
        type=int,
        default=2048,
        help="requests per measured run with --multi-series series/request",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--multi-series", type=int, default=32, help="0 skips the multi run")
    parser.add_argument("--multi-concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=200, help="requests of each warmup burst")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-stackcast", action="store_true")
    parser.add_argument(
        "--stackcast-env",
        action="append",
        default=[],
        metavar="KEY=VAL",
        help="setting for stackcast serve, e.g. MAX_BATCH_SIZE=128 (STACKCAST_ prefix optional)",
    )
    parser.add_argument("--mlflow-workers", type=int, default=1)
    parser.add_argument("--hey-cpus", type=int, default=None, help="hey -cpus (default: all)")
    parser.add_argument("--bare-repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the store and server logs")
    args = parser.parse_args(argv)
    if shutil.which("hey") is None:
        parser.error("hey is not on PATH")
    if len(args.requests) not in (1, len(args.concurrency)):
        parser.error("--requests takes one value or one per --concurrency level")
    if args.json is not None:
        args.json = args.json.resolve()  # before the chdir into the temporary store
    for item in args.stackcast_env:
        if "=" not in item:
            parser.error(f"--stackcast-env {item!r} is not KEY=VAL")
    return args


def stackcast_env_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        key = key.strip().upper()
        out[key if key.startswith("STACKCAST_") else f"STACKCAST_{key}"] = value
    return out


def scenarios_for(args: argparse.Namespace) -> list[Scenario]:
    counts = args.requests * len(args.concurrency) if len(args.requests) == 1 else args.requests
    out = [
        Scenario(c, 1, max(c, n // c * c)) for c, n in zip(args.concurrency, counts, strict=True)
    ]
    if args.multi_series:
        c = args.multi_concurrency
        out.append(Scenario(c, args.multi_series, max(c, args.requests_multi // c * c)))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)  # so `finally` blocks stop the servers

    tmp = Path(tempfile.mkdtemp(prefix="stackcast-bench-"))
    cwd = Path.cwd()
    os.chdir(tmp)  # MLflow's default artifact root (./mlruns) lands in tmp
    try:
        return _main(args, tmp)
    finally:
        os.chdir(cwd)
        if args.keep_tmp:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _main(args: argparse.Namespace, tmp: Path) -> int:
    import torch

    machine = machine_info()
    print(f"machine: {json.dumps(machine)}", flush=True)
    print(f"store: {tmp}", flush=True)
    store, model = register_bench_model(tmp)
    config = model.config
    description = (
        f"configs/m4_hourly.yaml model section ({config.cell}, input {config.input_size}, "
        f"patch {config.patch_size}, hidden {config.hidden_size} x {config.num_layers} layers, "
        f"horizon {config.horizon}), UNTRAINED weights (torch.manual_seed({SEED})): "
        f"forecasts are meaningless, throughput is not; registered as "
        f"{MODEL_NAME}@{ALIAS} = version {store.version}"
    )
    print(f"model: {description}", flush=True)
    artifacts = [p for p in tmp.rglob("weights.safetensors")]
    print(f"artifacts under the store dir: {[str(p.relative_to(tmp)) for p in artifacts]}")

    print("\nbare model:", flush=True)
    bare = bare_throughput(model, config.input_size, args.bare_repeats, min_run_seconds=0.3)

    scenarios = scenarios_for(args)
    payloads = write_payloads(tmp, [s.series for s in scenarios], config.input_size, config.horizon)
    with torch.inference_mode():
        reference = {
            n: model(torch.from_numpy(p.windows)).double().numpy() for n, p in payloads.items()
        }

    env_overrides = {
        "STACKCAST_RELOAD_INTERVAL": "0",
        **stackcast_env_overrides(args.stackcast_env),
    }
    runs: list[Run] = []
    idle_cores: dict[str, float] = {}
    checks: list[str] = []
    answers: dict[str, dict[int, np.ndarray]] = {}

    if not args.skip_stackcast:
        port = free_port()
        env = clean_env()
        env.update(env_overrides)
        env.update(
            STACKCAST_MODEL_URI=f"models:/{MODEL_NAME}@{ALIAS}",
            STACKCAST_TRACKING_URI=store.tracking_uri,
            STACKCAST_PORT=str(port),
            STACKCAST_HOST="127.0.0.1",
        )
        base = f"http://127.0.0.1:{port}"
        print(f"\nstackcast serve ({env_overrides}):", flush=True)
        with running_server(
            "stackcast serve",
            [str(VENV_BIN / "stackcast"), "serve"],
            env,
            f"{base}/health",
            tmp / "stackcast.log",
            tmp,
        ) as process:
            info = httpx.get(f"{base}/info", timeout=10).json()
            print(f"  /info batching: {info.get('batching')}", flush=True)
            answers["stackcast"] = check_stackcast(f"{base}/predict", payloads, reference)
            for n, got in answers["stackcast"].items():
                err = relative_error(got, reference[n])
                checks.append(
                    f"stackcast, {n} series: max relative error vs in-process model {err:.2e} "
                    f"({'OK' if err <= RTOL else 'FAIL'}, rtol {RTOL})"
                )
                print(f"  check: {checks[-1]}", flush=True)
                if err > RTOL:
                    raise RuntimeError(checks[-1])
            runs += measure(
                "stackcast",
                process,
                f"{base}/predict",
                lambda n: payloads[n].stackcast,
                scenarios,
                args.warmup,
                args.hey_cpus,
                f"{base}/metrics",
                idle_cores,
            )

    if not args.skip_mlflow:
        port = free_port()
        env = clean_env()
        env["MLFLOW_TRACKING_URI"] = store.tracking_uri
        base = f"http://127.0.0.1:{port}"
        command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m"]
        command += [f"models:/{MODEL_NAME}/{store.version}", "--env-manager", "local"]
        command += ["-h", "127.0.0.1", "-p", str(port), "-w", str(args.mlflow_workers)]
        print(f"\nmlflow models serve ({args.mlflow_workers} worker(s)):", flush=True)
        with running_server(
            "mlflow models serve", command, env, f"{base}/ping", tmp / "mlflow.log", tmp
        ) as process:
            answers["mlflow"] = check_mlflow(f"{base}/invocations", payloads, reference)
            for n, got in answers["mlflow"].items():
                err = relative_error(got, reference[n])
                line = f"mlflow, {n} series: max relative error vs in-process model {err:.2e}"
                if "stackcast" in answers:
                    both = relative_error(answers["stackcast"][n], got)
                    line += f"; stackcast vs mlflow {both:.2e}"
                    err = max(err, both)
                checks.append(f"{line} ({'OK' if err <= RTOL else 'FAIL'}, rtol {RTOL})")
                print(f"  check: {checks[-1]}", flush=True)
                if err > RTOL:
                    raise RuntimeError(checks[-1])
            runs += measure(
                "mlflow",
                process,
                f"{base}/invocations",
                lambda n: payloads[n].mlflow,
                scenarios,
                args.warmup,
                args.hey_cpus,
                None,
                idle_cores,
            )

    ratios = []
    for s in scenarios:
        mine = {r.server: r for r in runs if (r.concurrency, r.series) == (s.concurrency, s.series)}
        if "stackcast" in mine and "mlflow" in mine:
            theirs = mine["mlflow"].rps
            ratios.append(
                {
                    "scenario": s.key,
                    "stackcast_rps": mine["stackcast"].rps,
                    "mlflow_rps": theirs,
                    "ratio": mine["stackcast"].rps / theirs if theirs else None,
                }
            )

    report = {
        "machine": machine,
        "model": {"description": description, "config": config.model_dump(), "seed": SEED},
        "stackcast_env": env_overrides,
        "mlflow_workers": args.mlflow_workers,
        "bare": bare,
        "checks": checks,
        "scenarios": [asdict(s) for s in scenarios],
        "runs": [asdict(r) for r in runs],
        "ratios": ratios,
        "server_idle_cores": idle_cores,
        "efficiency": efficiency(bare, runs),
        "argv": sys.argv,
    }
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
