"""The bench's scenarios: the reference's own runs, POST ticket, POST vasco and GET ticket
against the service on one database, and POST ticket on an empty database against one that
holds BENCH_SCALE_CREDENTIALS ticket credentials; and all of them in the order of a run."""

from __future__ import annotations

import base64
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from load import Scenario, combine_runs, mean_reference, measure, run_wrk, run_wrk_on
from seeding import (
    migrate,
    postgresql_schema,
    scale_database,
    seed_client,
    seed_users,
    sqlite_url,
    users_with_tickets,
)
from server import Server, request_json, service_server, start_reference
from settings import CLIENT, CORE, VASCO_BLOCK_BYTES, Settings, log


def run_reference(settings: Settings, server: Server) -> dict:
    scenario = Scenario("reference POST (bare Flask)", "-", "reference.lua", [], [])
    return measure(settings, server, scenario)


def vasco_blocks() -> list[str]:
    return [
        f"{mode}={base64.b64encode(os.urandom(VASCO_BLOCK_BYTES)).decode()}" for mode in ("1", "2")
    ]


def run_service(
    settings: Settings,
    backend: str,
    database_url: str,
    directory: Path,
    encryption_key: str,
    scenarios: tuple[str, ...],
    reference: Server,
    label: str | None = None,
) -> dict[str, dict]:
    """Seed the user pools, start the service on ``database_url`` and measure each
    scenario in turns with the ``reference``."""
    label = label or backend
    started = time.monotonic()
    seed_users(database_url, "u", settings.users)
    seed_users(database_url, "w", settings.warmup_users)
    seed_users(database_url, "check", 1)
    seconds = time.monotonic() - started
    log(f"seeded {settings.users + settings.warmup_users:,} users in {seconds:.1f} s")
    api_key = "bench-" + secrets.token_urlsafe(24)
    server = service_server(settings, label, database_url, directory, api_key, encryption_key)
    results: dict[str, dict] = {}
    try:
        server.wait_ready()
        # One request of each kind first: the set-up is right before anything is measured.
        status, body = request_json(
            "POST", f"{server.base_url}{CORE}/{CLIENT}/users/check0/ticket", api_key, {}
        )
        assert status == 201, (status, body)
        blocks = vasco_blocks()
        status, body = request_json(
            "POST",
            f"{server.base_url}{CORE}/{CLIENT}/vasco",
            api_key,
            {
                "extId": "check",
                "vascoTokens": [
                    {"authMode": mode, "data": data}
                    for mode, data in (block.split("=", 1) for block in blocks)
                ],
            },
        )
        assert status == 201, (status, body)
        threads = str(settings.threads)
        if "ticket" in scenarios:
            results["ticket"] = measure(
                settings,
                server,
                Scenario(
                    "POST ticket",
                    label,
                    "ticket_create.lua",
                    [api_key, CLIENT, "w", str(settings.warmup_users), threads],
                    [api_key, CLIENT, "u", str(settings.users), threads],
                    # The second half starts in the middle of the pool.
                    [api_key, CLIENT, "u", str(settings.users), threads, str(settings.users // 2)],
                ),
                reference,
            )
        if "vasco" in scenarios:
            results["vasco"] = measure(
                settings,
                server,
                Scenario(
                    "POST vasco",
                    label,
                    "vasco_create.lua",
                    [api_key, CLIENT, "warm", *blocks],
                    [api_key, CLIENT, "run", *blocks],
                    [api_key, CLIENT, "later", *blocks],
                ),
                reference,
            )
        if "get" in scenarios:
            users = users_with_tickets(database_url)
            users_file = directory / f"ticket-users-{label}.txt"
            users_file.write_text("\n".join(users) + "\n")
            results["get"] = measure(
                settings,
                server,
                Scenario(
                    "GET ticket",
                    label,
                    "ticket_get.lua",
                    [api_key, CLIENT, str(users_file)],
                    [api_key, CLIENT, str(users_file)],
                ),
                reference,
            )
    finally:
        server.stop()
    return results


def run_scale_check(
    settings: Settings, empty_url: str, scaled_url: str, directory: Path, encryption_key: str
) -> dict[str, dict]:
    """POST ticket on the empty database against the one holding the seeded credentials.

    Both services run side by side and are measured in turns, empty, scaled, empty, scaled,
    each turn half of BENCH_DURATION, so that a change in the machine's load during the
    check falls on both alike. Each side's figures add up its two turns (p50 and p99 are the
    request-weighted mean of the turns' percentiles).
    """
    api_key = "bench-" + secrets.token_urlsafe(24)
    turns = 4
    pool = settings.users
    servers = {}
    try:
        for side, url in (("sqlite-empty", empty_url), ("sqlite-1M", scaled_url)):
            seed_users(url, "scale", pool)
            seed_users(url, "scalewarm", settings.warmup_users)
            servers[side] = service_server(settings, side, url, directory, api_key, encryption_key)
        threads = str(settings.threads)
        for server in servers.values():
            server.wait_ready()
            if settings.warmup > 0:
                run_wrk(
                    settings,
                    server.base_url,
                    "ticket_create.lua",
                    [api_key, CLIENT, "scalewarm", str(settings.warmup_users), threads],
                    settings.warmup,
                )
        runs: dict[str, list[dict]] = {side: [] for side in servers}
        seconds = max(1, settings.duration // 2)
        for turn in range(turns):
            side = ("sqlite-empty", "sqlite-1M")[turn % 2]
            # Each side's turns walk disjoint parts of its pool.
            first = (turn // 2) * (pool // 2)
            runs[side].append(
                run_wrk_on(
                    settings,
                    servers[side],
                    "ticket_create.lua",
                    [api_key, CLIENT, "scale", str(pool), threads, str(first)],
                    seconds,
                )
            )
        results = {}
        for side, side_runs in runs.items():
            result = combine_runs(side_runs)
            peaks = servers[side].peak_rss_mb()
            result["peak_rss_mb_per_worker"] = round(max(peaks.values()), 1) if peaks else None
            result["workers"] = len(peaks)
            results[f"{side}/ticket"] = result
            log(
                f"POST ticket [{side}, turns]: {result['requests_per_s']} req/s, "
                f"p99 {result['p99_ms']} ms, non-2xx {result['non_2xx']}"
            )
        return results
    finally:
        for server in servers.values():
            server.stop()


def run_all(settings: Settings, encryption_key: str) -> dict[str, dict]:
    """Every run of the bench, in a temporary directory (databases, logs): the reference
    first, the chosen scenarios on SQLite (and on PostgreSQL), the scale check, the
    reference last; the figures by key (``sqlite/ticket``, ``reference``, ..)."""
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="nevisidm-bench-") as temporary:
        directory = Path(temporary)
        reference = start_reference(settings, directory)
        try:
            # The reference is measured on its own first and last, and in turns with every
            # scenario (see ``measure``): the machine may be shared, and its load may change.
            figures["reference/first"] = run_reference(settings, reference)

            database = directory / "bench.sqlite"
            url = url_empty = sqlite_url(database)
            migrate(url, encryption_key)
            seed_client(url, encryption_key)
            for name, result in run_service(
                settings, "sqlite", url, directory, encryption_key, settings.scenarios, reference
            ).items():
                figures[f"sqlite/{name}"] = result

            if settings.database_url:
                with postgresql_schema(settings.database_url) as url:
                    migrate(url, encryption_key)
                    seed_client(url, encryption_key)
                    for name, result in run_service(
                        settings,
                        "postgresql",
                        url,
                        directory,
                        encryption_key,
                        settings.scenarios,
                        reference,
                    ).items():
                        figures[f"postgresql/{name}"] = result

            if settings.scale:
                scaled = scale_database(settings, directory, encryption_key)
                scaled_url = sqlite_url(scaled)
                figures.update(
                    run_scale_check(settings, url_empty, scaled_url, directory, encryption_key)
                )
            figures["reference/last"] = run_reference(settings, reference)
            reference_runs = [figures["reference/first"], figures["reference/last"]] + [
                result["reference"] for result in figures.values() if "reference" in result
            ]
            peaks = reference.peak_rss_mb()
            figures["reference"] = mean_reference(reference_runs)
            figures["reference"]["peak_rss_mb_per_worker"] = round(max(peaks.values()), 1)
        except Exception:
            for log_file in sorted(directory.glob("*.log")):
                tail = log_file.read_text(errors="replace").splitlines()[-15:]
                print(f"--- last lines of {log_file.name}", *tail, sep="\n", file=sys.stderr)
            raise
        finally:
            reference.stop()
    return figures
