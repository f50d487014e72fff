"""The bench's report: the machine and commit, each figure's ratio to the reference, the
printed table, the goals of issue 6, bench-results/<timestamp>.json and the BENCHMARKS.md
row."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from settings import BENCHMARKS, REPO, RESULTS, Settings


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


ROWS = [
    ("reference/first", "reference POST (bare Flask), first"),
    ("reference/last", "reference POST (bare Flask), last"),
    ("reference", "reference, mean of all its runs"),
    ("sqlite/ticket", "POST ticket [sqlite]"),
    ("sqlite/vasco", "POST vasco [sqlite]"),
    ("sqlite/get", "GET ticket [sqlite]"),
    ("postgresql/ticket", "POST ticket [postgresql]"),
    ("postgresql/vasco", "POST vasco [postgresql]"),
    ("postgresql/get", "GET ticket [postgresql]"),
    ("sqlite-empty/ticket", "POST ticket [sqlite, no prefill, in turns]"),
    ("sqlite-1M/ticket", "POST ticket [sqlite, {scale:,} creds, in turns]"),
]


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return round(value / reference, 3)


def add_ratios(figures: dict[str, dict]) -> None:
    for key, result in figures.items():
        if key.startswith("reference"):
            continue
        # Against the reference run in turns with the scenario, or else the mean of all.
        reference = dict(figures["reference"])
        reference.update(result.get("reference", {}))
        result["ratio"] = {
            "requests_per_s": ratio(result["requests_per_s"], reference["requests_per_s"]),
            "p50": ratio(result["p50_ms"], reference["p50_ms"]),
            "p99": ratio(result["p99_ms"], reference["p99_ms"]),
            "peak_rss": ratio(
                result["peak_rss_mb_per_worker"], reference["peak_rss_mb_per_worker"]
            ),
            "cpu_per_request": ratio(
                result.get("cpu_ms_per_request"), reference.get("cpu_ms_per_request")
            ),
        }


def table(figures: dict[str, dict], scale_credentials: int) -> str:
    header = (
        f"{'scenario':<50} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
        f"{'sock err':>8} {'RSS MB':>7} {'CPU ms':>7} | {'x req/s':>7} {'x p50':>6} "
        f"{'x p99':>6} {'x RSS':>6} {'x CPU':>6}"
    )
    lines = [header, "-" * len(header)]
    for key, title in ROWS:
        result = figures.get(key)
        if result is None:
            continue
        ratios = result.get("ratio", {})

        def show(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        lines.append(
            f"{title.format(scale=scale_credentials):<50} {result['requests_per_s']:>8.0f} "
            f"{result['p50_ms']:>8.2f} "
            f"{result['p99_ms']:>8.2f} {result['non_2xx']:>8} {result['socket_errors']:>8} "
            f"{result['peak_rss_mb_per_worker'] or 0:>7.1f} "
            f"{show(result.get('cpu_ms_per_request')):>7} | "
            f"{show(ratios.get('requests_per_s')):>7} {show(ratios.get('p50')):>6} "
            f"{show(ratios.get('p99')):>6} {show(ratios.get('peak_rss')):>6} "
            f"{show(ratios.get('cpu_per_request')):>6}"
        )
    return "\n".join(lines)


def targets(figures: dict[str, dict]) -> list[dict[str, Any]]:
    """The goals of issue 6, each with its measured value and whether it is met."""
    checks = []

    def check(name: str, value: float | None, goal: str, met: bool | None) -> None:
        checks.append({"target": name, "value": value, "goal": goal, "met": met})

    def figure(key: str, *path: str) -> float | None:
        value: Any = figures.get(key)
        for part in path:
            value = None if value is None else value.get(part)
        return value

    ticket = figure("sqlite/ticket", "ratio", "requests_per_s")
    check("POST ticket sqlite req/s vs reference", ticket, ">= 0.50", _at_least(ticket, 0.5))
    p99 = figure("sqlite/ticket", "ratio", "p99")
    check("POST ticket sqlite p99 vs reference", p99, "< 4", None if p99 is None else p99 < 4)
    errors = None
    if "sqlite/ticket" in figures:
        errors = figures["sqlite/ticket"]["non_2xx"] + figures["sqlite/ticket"]["socket_errors"]
    check("POST ticket sqlite errors", errors, "== 0", None if errors is None else errors == 0)
    vasco = figure("sqlite/vasco", "ratio", "requests_per_s")
    check("POST vasco sqlite req/s vs reference", vasco, ">= 0.40", _at_least(vasco, 0.4))
    postgresql = figure("postgresql/ticket", "ratio", "requests_per_s")
    check(
        "POST ticket postgresql req/s vs reference",
        postgresql,
        ">= 0.35",
        _at_least(postgresql, 0.35),
    )
    scale_ratio = ratio(
        figure("sqlite-1M/ticket", "requests_per_s"),
        figure("sqlite-empty/ticket", "requests_per_s"),
    )
    check(
        "POST ticket sqlite, 1M credentials vs empty",
        scale_ratio,
        ">= 0.90",
        _at_least(scale_ratio, 0.9),
    )
    peaks = [
        result["peak_rss_mb_per_worker"]
        for key, result in figures.items()
        if not key.startswith("reference") and result.get("peak_rss_mb_per_worker")
    ]
    peak = max(peaks) if peaks else None
    check("peak RSS per worker (MB)", peak, "< 80", None if peak is None else peak < 80)
    return checks


def _at_least(value: float | None, goal: float) -> bool | None:
    return None if value is None else value >= goal


BENCHMARKS_COLUMNS = [
    "date",
    "machine",
    "commit",
    "settings",
    "reference",
    "POST ticket sqlite",
    "POST vasco sqlite",
    "GET ticket sqlite",
    "POST ticket postgresql",
    "POST ticket sqlite 1M",
    "errors",
    "peak RSS/worker",
    "note",
]
BENCHMARKS_HEADER = (
    "# Benchmarks\n\n"
    "Rows appended by `make bench` (bench/run.py; README, Benchmarks). Each figure is\n"
    "requests/s, then p99 latency in ms, then in brackets its ratio to the bare Flask reference\n"
    "route measured in turns with it (requests/s ratio / p99 ratio). Errors count the non-2xx\n"
    "responses and socket errors of every scenario. Absolute numbers depend on the machine and\n"
    "its load; compare ratios.\n\n"
    + "| "
    + " | ".join(BENCHMARKS_COLUMNS)
    + " |\n"
    + "|"
    + "---|" * len(BENCHMARKS_COLUMNS)
    + "\n"
)


def benchmarks_row(report: dict[str, Any]) -> str:
    figures = report["figures"]

    def cell(key: str) -> str:
        result = figures.get(key)
        if result is None:
            return "-"
        text = f"{result['requests_per_s']:.0f}/s, {result['p99_ms']:.1f} ms"
        if "ratio" in result:
            ratios = result["ratio"]
            text += f" ({ratios['requests_per_s']:.2f} / {ratios['p99']:.2f})"
        return text

    errors = sum(
        result["non_2xx"] + result["socket_errors"]
        for key, result in figures.items()
        if key != "reference"  # the mean: its runs are counted already
    )
    peaks = [
        result["peak_rss_mb_per_worker"] or 0
        for key, result in figures.items()
        if not key.startswith("reference")
    ]
    settings = report["settings"]
    cells = [
        report["date"],
        f"{report['machine']['nproc']} x {report['machine']['cpu']}",
        report["commit"],
        f"{settings['workers']} workers, {settings['connections']} conn, "
        f"{settings['threads']} threads, {settings['duration']} s",
        cell("reference"),
        cell("sqlite/ticket"),
        cell("sqlite/vasco"),
        cell("sqlite/get"),
        cell("postgresql/ticket"),
        cell("sqlite-1M/ticket") + scale_note(figures),
        str(errors),
        f"{max(peaks):.0f} MB" if peaks else "-",
        settings["label"] or "",
    ]
    return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |\n"


def scale_note(figures: dict[str, dict]) -> str:
    scaled, empty = figures.get("sqlite-1M/ticket"), figures.get("sqlite-empty/ticket")
    if not scaled or not empty:
        return ""
    return f", {ratio(scaled['requests_per_s'], empty['requests_per_s']):.2f} x no prefill"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def new_report(settings: Settings) -> dict[str, Any]:
    """The report's head, before anything is measured: when, where, which commit, the
    settings and the machine's load."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "commit": commit(),
        "settings": {
            "workers": settings.workers,
            "duration": settings.duration,
            "warmup": settings.warmup,
            "connections": settings.connections,
            "threads": settings.threads,
            "users": settings.users,
            "postgresql": bool(settings.database_url),
            "scale": settings.scale,
            "scale_credentials": settings.scale_credentials if settings.scale else None,
            "label": settings.label,
        },
        "load_average_before": load_average(),
    }


def complete_report(report: dict[str, Any], figures: dict[str, dict]) -> None:
    """Add the ``figures`` with their ratios, the targets and the load afterwards."""
    add_ratios(figures)
    report["figures"] = figures
    report["targets"] = targets(figures)
    report["load_average_after"] = load_average()


def write_report(report: dict[str, Any], stamp: str) -> Path:
    """bench-results/<stamp>.json, and the report's row appended to BENCHMARKS.md (which
    starts with its header when new); the JSON file's path."""
    result_file = RESULTS / f"{stamp}.json"
    result_file.write_text(json.dumps(report, indent=2) + "\n")
    if not BENCHMARKS.exists():
        BENCHMARKS.write_text(BENCHMARKS_HEADER)
    with BENCHMARKS.open("a") as benchmarks:
        benchmarks.write(benchmarks_row(report))
    return result_file


def print_report(report: dict[str, Any], settings: Settings, result_file: Path) -> None:
    """The run in a line, the table, each target met or missed, and where it was written."""
    print()
    print(
        f"{report['date']}, commit {report['commit']}, {report['machine']['nproc']} x "
        f"{report['machine']['cpu']}; {settings.workers} workers, {settings.connections} "
        f"connections, {settings.threads} wrk threads, {settings.duration} s per scenario; "
        f"load average {report['load_average_before']} -> {report['load_average_after']}"
    )
    print(table(report["figures"], settings.scale_credentials))
    print()
    for check in report["targets"]:
        state = {True: "pass", False: "MISS", None: "not measured"}[check["met"]]
        print(f"  {state:<12} {check['target']}: {check['value']} (goal {check['goal']})")
    print(f"\nwritten: {result_file.relative_to(REPO)}, row appended to BENCHMARKS.md")
