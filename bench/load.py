"""Driving wrk and measuring: one wrk run and its figures (bench/lua/report.lua prints them),
the workers' CPU time per request, a scenario warmed up and measured in turns with the
reference, and the figures of several runs combined."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

from server import Server
from settings import LUA, Settings, log


def run_wrk(settings: Settings, url: str, script: str, args: list[str], seconds: int) -> dict:
    command = [
        "wrk",
        "--threads",
        str(settings.threads),
        "--connections",
        str(settings.connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--script",
        str(LUA / script),
        url,
        "--",
        *args,
    ]
    env = dict(os.environ, BENCH_LUA_DIR=str(LUA))
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            figures = json.loads(line.removeprefix("BENCH-RESULT "))
            break
    else:
        raise RuntimeError(f"wrk gave no result:\n{completed.stdout}\n{completed.stderr}")
    seconds_run = figures["duration_us"] / 1e6
    return {
        "requests": figures["requests"],
        "duration_s": round(seconds_run, 3),
        "requests_per_s": round(figures["requests"] / seconds_run, 1),
        "p50_ms": round(figures["p50_us"] / 1000, 3),
        "p90_ms": round(figures["p90_us"] / 1000, 3),
        "p99_ms": round(figures["p99_us"] / 1000, 3),
        "max_ms": round(figures["max_us"] / 1000, 3),
        "non_2xx": figures["non_2xx"],
        "socket_errors": figures["connect_errors"]
        + figures["read_errors"]
        + figures["write_errors"]
        + figures["timeouts"],
        "first_error": figures["first_error"],
    }


def run_wrk_on(
    settings: Settings, server: Server, script: str, args: list[str], seconds: int
) -> dict:
    """``run_wrk`` against ``server``, with the CPU time its workers spent meanwhile: per
    request, a figure that the machine's other load moves much less than requests/s (the
    workers' own work only: not gunicorn's master, wrk or the database server)."""
    before = server.cpu_seconds()
    result = run_wrk(settings, server.base_url, script, args, seconds)
    result["worker_cpu_s"] = round(server.cpu_seconds() - before, 2)
    result["cpu_ms_per_request"] = cpu_ms_per_request(result["worker_cpu_s"], result["requests"])
    return result


def cpu_ms_per_request(cpu_seconds: float, requests: int) -> float | None:
    return round(1000 * cpu_seconds / requests, 3) if requests else None


@dataclass
class Scenario:
    name: str
    backend: str
    script: str
    warmup_args: list[str]
    args: list[str]
    # The second half's arguments, when it must not repeat the first's (new users, extIds).
    later_args: list[str] | None = None


def measure(
    settings: Settings, server: Server, scenario: Scenario, reference: Server | None = None
) -> dict:
    """Warm up, then measure. With a ``reference`` server, in turns: half of the duration
    on ``server``, the whole duration on the reference, the other half on ``server``, so
    that a change in the machine's load during the scenario falls on both alike; the
    scenario's ratios are taken against that reference run."""
    if settings.warmup > 0:
        run_wrk(settings, server.base_url, scenario.script, scenario.warmup_args, settings.warmup)
    if reference is None:
        result = run_wrk_on(settings, server, scenario.script, scenario.args, settings.duration)
    else:
        half = max(1, settings.duration // 2)
        first = run_wrk_on(settings, server, scenario.script, scenario.args, half)
        reference_run = run_wrk_on(settings, reference, "reference.lua", [], 2 * half)
        later_args = scenario.later_args or scenario.args
        second = run_wrk_on(settings, server, scenario.script, later_args, half)
        result = combine_runs([first, second])
        result["reference"] = reference_run
    peaks = server.peak_rss_mb()
    result["peak_rss_mb_per_worker"] = round(max(peaks.values()), 1) if peaks else None
    result["workers"] = len(peaks)
    log(
        f"{scenario.name} [{scenario.backend}]: {result['requests_per_s']} req/s, "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, non-2xx {result['non_2xx']}, "
        f"socket errors {result['socket_errors']}, peak RSS {result['peak_rss_mb_per_worker']} MB"
        + (f", first error: {result['first_error']}" if result["first_error"] else "")
        + (
            f"; reference meanwhile {result['reference']['requests_per_s']} req/s"
            if "reference" in result
            else ""
        )
    )
    return result


def mean_reference(runs: list[dict]) -> dict:
    """The reference's figures over all its runs (the table's reference row, and what a
    scenario measured without turns is compared with)."""
    count = len(runs)
    cpu_seconds = sum(run["worker_cpu_s"] for run in runs)
    return {
        "requests": sum(run["requests"] for run in runs),
        "duration_s": round(sum(run["duration_s"] for run in runs), 3),
        "requests_per_s": round(sum(run["requests_per_s"] for run in runs) / count, 1),
        "p50_ms": round(sum(run["p50_ms"] for run in runs) / count, 3),
        "p90_ms": round(sum(run["p90_ms"] for run in runs) / count, 3),
        "p99_ms": round(sum(run["p99_ms"] for run in runs) / count, 3),
        "max_ms": max(run["max_ms"] for run in runs),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "first_error": next((run["first_error"] for run in runs if run["first_error"]), None),
        "peak_rss_mb_per_worker": max(run.get("peak_rss_mb_per_worker") or 0 for run in runs),
        "workers": runs[0].get("workers"),
        "runs": count,
        "worker_cpu_s": round(cpu_seconds, 2),
        "cpu_ms_per_request": cpu_ms_per_request(cpu_seconds, sum(run["requests"] for run in runs)),
    }


def combine_runs(runs: list[dict]) -> dict:
    requests = sum(run["requests"] for run in runs)
    seconds = sum(run["duration_s"] for run in runs)
    cpu_seconds = sum(run["worker_cpu_s"] for run in runs)

    def weighted(name: str) -> float:
        return round(sum(run[name] * run["requests"] for run in runs) / max(requests, 1), 3)

    return {
        "requests": requests,
        "duration_s": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 1),
        "p50_ms": weighted("p50_ms"),
        "p90_ms": weighted("p90_ms"),
        "p99_ms": weighted("p99_ms"),
        "max_ms": max(run["max_ms"] for run in runs),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "first_error": next((run["first_error"] for run in runs if run["first_error"]), None),
        "worker_cpu_s": round(cpu_seconds, 2),
        "cpu_ms_per_request": cpu_ms_per_request(cpu_seconds, requests),
        "turns": runs,
    }
