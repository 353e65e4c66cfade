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
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from loadgen import Run, Scenario, measure
from procs import VENV_BIN, clean_env, free_port, running_server
from serve_report import efficiency, print_report

MODEL_NAME = "bench"
ALIAS = "champion"
SEED = 0
BATCH_SIZES = (1, 8, 64, 256)
RTOL = 1e-4


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

    from stackcast.models import StackedRNNForecaster
    from stackcast.training.config import load_config
    from stackcast.training.registry import log_forecaster

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


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-12)))


def answers_of(
    url: str,
    bodies: dict[int, Path],
    reference: dict[int, np.ndarray],
    read: Callable[[dict[str, Any]], list[list[float]]],
) -> dict[int, np.ndarray]:
    """One request per body; the forecasts, shape-checked against the in-process model."""
    answers = {}
    for n, body in bodies.items():
        response = httpx.post(
            url, content=body.read_bytes(), headers={"content-type": "application/json"}, timeout=60
        )
        if response.status_code != 200:
            raise RuntimeError(f"check {url}: {response.status_code} {response.text[:500]}")
        got = np.asarray(read(response.json()), dtype=np.float64)
        if got.shape != reference[n].shape:
            raise RuntimeError(f"check {url}: shape {got.shape} != {reference[n].shape}")
        answers[n] = got
    return answers


def stackcast_means(body: dict[str, Any]) -> list[list[float]]:
    """`stackcast serve`'s forecasts, checking each series kept its id and place."""
    forecasts = body["forecasts"]
    ids = [f["id"] for f in forecasts]
    if ids != [f"H{i + 1}" for i in range(len(forecasts))]:
        raise RuntimeError(f"stackcast check: ids out of order {ids[:3]}...")
    return [f["mean"] for f in forecasts]


def mlflow_means(body: dict[str, Any]) -> list[list[float]]:
    """`mlflow models serve`'s predictions."""
    return list(body["predictions"])


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
    parser.add_argument(
        "--hey-cpus",
        type=int,
        default=1,
        help="hey -cpus: OS threads of the load generator, which shares the machine with the "
        "server (0: all)",
    )
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


@dataclass
class Bench:
    """What both servers are measured on."""

    args: argparse.Namespace
    tmp: Path
    store: Store
    scenarios: list[Scenario]
    payloads: dict[int, Payload]
    reference: dict[int, np.ndarray]  # the in-process model's forecasts per body
    runs: list[Run] = field(default_factory=list)
    idle_cores: dict[str, float] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    answers: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)

    def load(
        self,
        server: str,
        process: subprocess.Popen[bytes],
        url: str,
        bodies: dict[int, Path],
        metrics_url: str | None,
    ) -> None:
        """Every scenario against one running server, with the same load generator settings."""
        self.runs += measure(
            server,
            process,
            url,
            bodies.__getitem__,
            self.scenarios,
            self.args.warmup,
            self.args.hey_cpus,
            metrics_url,
            self.idle_cores,
        )

    def check(self, server: str, answers: dict[int, np.ndarray]) -> None:
        """Record (and enforce) agreement with the in-process model and the other server."""
        self.answers[server] = answers
        for n, got in answers.items():
            err = relative_error(got, self.reference[n])
            line = f"{server}, {n} series: max relative error vs in-process model {err:.2e}"
            for other, theirs in self.answers.items():
                if other != server:
                    both = relative_error(theirs[n], got)
                    line += f"; {other} vs {server} {both:.2e}"
                    err = max(err, both)
            self.checks.append(f"{line} ({'OK' if err <= RTOL else 'FAIL'}, rtol {RTOL})")
            print(f"  check: {self.checks[-1]}", flush=True)
            if err > RTOL:
                raise RuntimeError(self.checks[-1])


def bench_stackcast(bench: Bench, overrides: dict[str, str]) -> None:
    """`stackcast serve` on the registered alias: check, then load at every scenario."""
    port = free_port()
    env = clean_env()
    env.update(overrides)
    env.update(
        STACKCAST_MODEL_URI=f"models:/{MODEL_NAME}@{ALIAS}",
        STACKCAST_TRACKING_URI=bench.store.tracking_uri,
        STACKCAST_PORT=str(port),
        STACKCAST_HOST="127.0.0.1",
    )
    base = f"http://127.0.0.1:{port}"
    print(f"\nstackcast serve ({overrides}):", flush=True)
    command = [str(VENV_BIN / "stackcast"), "serve"]
    log = bench.tmp / "stackcast.log"
    with running_server("stackcast serve", command, env, f"{base}/health", log, bench.tmp) as proc:
        info = httpx.get(f"{base}/info", timeout=10).json()
        print(f"  /info batching: {info.get('batching')}", flush=True)
        bodies = {n: p.stackcast for n, p in bench.payloads.items()}
        bench.check(
            "stackcast", answers_of(f"{base}/predict", bodies, bench.reference, stackcast_means)
        )
        bench.load("stackcast", proc, f"{base}/predict", bodies, f"{base}/metrics")


def bench_mlflow(bench: Bench) -> None:
    """`mlflow models serve --env-manager local` on the same version: check, then load."""
    port = free_port()
    env = clean_env()
    env["MLFLOW_TRACKING_URI"] = bench.store.tracking_uri
    base = f"http://127.0.0.1:{port}"
    workers = bench.args.mlflow_workers
    command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m"]
    command += [f"models:/{MODEL_NAME}/{bench.store.version}", "--env-manager", "local"]
    command += ["-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    print(f"\nmlflow models serve ({workers} worker(s)):", flush=True)
    log = bench.tmp / "mlflow.log"
    with running_server(
        "mlflow models serve", command, env, f"{base}/ping", log, bench.tmp
    ) as proc:
        bodies = {n: p.mlflow for n, p in bench.payloads.items()}
        bench.check(
            "mlflow", answers_of(f"{base}/invocations", bodies, bench.reference, mlflow_means)
        )
        bench.load("mlflow", proc, f"{base}/invocations", bodies, None)


def ratios(scenarios: list[Scenario], runs: list[Run]) -> list[dict[str, Any]]:
    """stackcast's requests/s over MLflow's, per scenario both ran."""
    out = []
    for s in scenarios:
        mine = {r.server: r for r in runs if (r.concurrency, r.series) == (s.concurrency, s.series)}
        if "stackcast" in mine and "mlflow" in mine:
            theirs = mine["mlflow"].rps
            out.append(
                {
                    "scenario": s.key,
                    "stackcast_rps": mine["stackcast"].rps,
                    "mlflow_rps": theirs,
                    "ratio": mine["stackcast"].rps / theirs if theirs else None,
                }
            )
    return out


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

    print("\nbare model:", flush=True)
    bare = bare_throughput(model, config.input_size, args.bare_repeats, min_run_seconds=0.3)

    scenarios = scenarios_for(args)
    payloads = write_payloads(tmp, [s.series for s in scenarios], config.input_size, config.horizon)
    with torch.inference_mode():
        reference = {
            n: model(torch.from_numpy(p.windows)).double().numpy() for n, p in payloads.items()
        }
    bench = Bench(args, tmp, store, scenarios, payloads, reference)
    overrides = {"STACKCAST_RELOAD_INTERVAL": "0", **stackcast_env_overrides(args.stackcast_env)}
    if not args.skip_stackcast:
        bench_stackcast(bench, overrides)
    if not args.skip_mlflow:
        bench_mlflow(bench)

    report = {
        "machine": machine,
        "model": {"description": description, "config": config.model_dump(), "seed": SEED},
        "stackcast_env": overrides,
        "mlflow_workers": args.mlflow_workers,
        "hey_cpus": args.hey_cpus,
        "bare": bare,
        "checks": bench.checks,
        "scenarios": [asdict(s) for s in scenarios],
        "runs": [asdict(r) for r in bench.runs],
        "ratios": ratios(scenarios, bench.runs),
        "server_idle_cores": bench.idle_cores,
        "efficiency": efficiency(bare, bench.runs),
        "argv": sys.argv,
    }
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
