"""Markdown tables of a serving benchmark's results."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from loadgen import IDLE_SECONDS, Run, fmt


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
    print(f"- load generator: hey -cpus {report['hey_cpus'] or 'all'} on the same machine")
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
