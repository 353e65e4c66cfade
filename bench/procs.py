"""Benchmark helpers: run a server in its own process group, stop all of it, account its CPU."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil

VENV_BIN = Path(sys.executable).parent  # `mlflow models serve` execs uvicorn from here
START_TIMEOUT = 240.0
STOP_TIMEOUT = 60.0


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
