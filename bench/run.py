"""`make bench`: load the service under gunicorn with wrk and compare it with a bare Flask route.

For each backend (SQLite always; PostgreSQL when BENCH_DATABASE_URL is set, in a schema of
its own that is dropped afterwards) the driver migrates a fresh database, seeds a client and
pools of users in bulk, starts `gunicorn wsgi:app` with the service's gunicorn.conf.py, and
drives it with wrk from a separate process on 127.0.0.1:

* POST ticket: every request a ticket for a new (seeded) user;
* POST vasco: every request a new extId, two token blocks of 248 bytes;
* GET ticket: walking users that hold a ticket.

The reference, bench/reference_app.py, is served by the same gunicorn settings and driven the
same way, and measured in turns with every scenario (half the scenario, the reference, the
other half), so that a change in the load of a shared machine falls on both alike; each
ratio is taken against the reference run of its own scenario.

With BENCH_SCALE=1, POST ticket also runs on an SQLite database already holding
BENCH_SCALE_CREDENTIALS (1,000,000) ticket credentials, seeded in bulk once and cached in
bench-results/cache/, in turns with the database the other scenarios left behind.

Figures: requests/s, p50 and p99 latency, non-2xx responses (and socket errors), the peak RSS
(VmHWM) of each gunicorn worker, the CPU time the workers spent per request (their own, from
/proc: a cost that the machine's other load moves much less than requests/s), and each one's
ratio to the reference. They are printed, written to bench-results/<timestamp>.json and
appended as a row to BENCHMARKS.md (without the CPU figures, which are in the JSON).

Settings (environment): BENCH_WORKERS (2), BENCH_DURATION (10 s per scenario),
BENCH_WARMUP (2 s per scenario, not measured), BENCH_CONNECTIONS (16), BENCH_THREADS (2),
BENCH_USERS (users seeded per measured POST ticket run, 100000), BENCH_DATABASE_URL,
BENCH_SCALE (0), BENCH_SCALE_CREDENTIALS (1000000), BENCH_LABEL (a note for the
BENCHMARKS.md row), BENCH_SCENARIOS (comma-separated subset of ticket,vasco,get).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
LUA = BENCH / "lua"
RESULTS = REPO / "bench-results"
CACHE = RESULTS / "cache"
BENCHMARKS = REPO / "BENCHMARKS.md"
BIN = Path(sys.executable).parent
CORE = "/nevisidm/api/core/v1"
CLIENT = "bench"
HOST = "127.0.0.1"
VASCO_BLOCK_BYTES = 248

sys.path.insert(0, str(REPO))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    workers: int = 2
    duration: int = 10
    warmup: int = 2
    connections: int = 16
    threads: int = 2
    users: int = 100_000
    database_url: str | None = None
    scale: bool = False
    scale_credentials: int = 1_000_000
    label: str = ""
    scenarios: tuple[str, ...] = ("ticket", "vasco", "get")

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        scenarios = tuple(
            name.strip()
            for name in env.get("BENCH_SCENARIOS", "ticket,vasco,get").split(",")
            if name.strip()
        )
        unknown = set(scenarios) - {"ticket", "vasco", "get"}
        if unknown:
            raise SystemExit(f"BENCH_SCENARIOS: unknown scenario(s) {sorted(unknown)}")
        return cls(
            workers=int(env.get("BENCH_WORKERS", 2)),
            duration=int(env.get("BENCH_DURATION", 10)),
            warmup=int(env.get("BENCH_WARMUP", 2)),
            connections=int(env.get("BENCH_CONNECTIONS", 16)),
            threads=int(env.get("BENCH_THREADS", 2)),
            users=int(env.get("BENCH_USERS", 100_000)),
            database_url=env.get("BENCH_DATABASE_URL") or None,
            scale=env.get("BENCH_SCALE", "0") not in ("", "0", "false", "no"),
            scale_credentials=int(env.get("BENCH_SCALE_CREDENTIALS", 1_000_000)),
            label=env.get("BENCH_LABEL", ""),
            scenarios=scenarios,
        )

    @property
    def warmup_users(self) -> int:
        # Enough for the warm-up at ten times the measured rate per second of the pool.
        return max(2_000, self.users * max(self.warmup, 1) // max(self.duration, 1))


# --------------------------------------------------------------------------- databases


def service_app(database_url: str, encryption_key: str):
    """The service's app, in this process, for migrating and seeding."""
    from app import create_app

    return create_app(
        {
            "DATABASE_URL": database_url,
            "CREDENTIAL_ENCRYPTION_KEY": encryption_key,
            "BOOTSTRAP_API_KEY": None,
            "LOG_LEVEL": "WARNING",
        }
    )


def migrate(database_url: str, encryption_key: str) -> None:
    import flask_migrate

    from app.extensions import db
    from app.migrations import init_migrations

    app = service_app(database_url, encryption_key)
    init_migrations(app)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


@contextlib.contextmanager
def postgresql_schema(server_url: str) -> Iterator[str]:
    """A schema of our own on the server, dropped afterwards; yields the URL that uses it."""
    from tests.support import postgresql_schema as own_schema

    with own_schema(server_url, prefix="bench") as url:
        yield url
    log("dropped the bench's PostgreSQL schema")


def seed_client(database_url: str, encryption_key: str) -> None:
    """The client every scenario works in, with its default policies (through the
    repository, as the API would create it)."""
    from app.repositories.clients import ClientRepository

    app = service_app(database_url, encryption_key)
    with app.app_context():
        ClientRepository().create(name="Bench", ext_id=CLIENT)
        from app.extensions import db

        db.engine.dispose()


def _client_row(connection) -> tuple[int, int]:
    """(client id, its default TicketPolicy id)."""
    from sqlalchemy import select

    from app.models import TICKET_POLICY, Client, Policy

    client_id = connection.scalar(select(Client.id).where(Client.ext_id == CLIENT))
    policy_id = connection.scalar(
        select(Policy.id).where(
            Policy.client_id == client_id,
            Policy.policy_type == TICKET_POLICY,
            Policy.is_default.is_(True),
        )
    )
    return client_id, policy_id


def seed_users(database_url: str, prefix: str, count: int, batch: int = 20_000) -> None:
    """Users <prefix>0 .. <prefix>(count - 1), in bulk (Core executemany)."""
    from sqlalchemy import create_engine, insert

    from app.models import User

    engine = create_engine(database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as connection:
        client_id, _ = _client_row(connection)
        for start in range(0, count, batch):
            rows = [
                {
                    "ext_id": f"{prefix}{index}",
                    "login_id": f"{prefix}{index}",
                    "client_id": client_id,
                    "created": now,
                    "last_modified": now,
                    "version": 1,
                }
                for index in range(start, min(count, start + batch))
            ]
            connection.execute(insert(User), rows)
    engine.dispose()


def seed_tickets(database_url: str, count: int, batch: int = 25_000) -> None:
    """``count`` users holding a ticket credential each, in bulk (Core executemany with
    explicit ids, so that no row needs a round trip of its own)."""
    from sqlalchemy import create_engine, func, insert, select

    from app.crypto import hash_ticket
    from app.models import Credential, TicketCredential, User

    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def fast_bulk_load(dbapi_connection, record):  # a throw-away load: no fsync
            dbapi_connection.execute("PRAGMA synchronous = OFF")

    now = datetime.now(UTC).replace(microsecond=0)
    ticket_hash = hash_ticket("bench-seeded-ticket")
    lifetime = timedelta(days=5)
    credentials = Credential.__table__
    tickets = TicketCredential.__table__
    with engine.begin() as connection:
        client_id, policy_id = _client_row(connection)
        first_user = (connection.scalar(select(func.max(User.id))) or 0) + 1
        first_credential = (connection.scalar(select(func.max(Credential.id))) or 0) + 1
        for start in range(0, count, batch):
            indexes = range(start, min(count, start + batch))
            # Spread the creation times, as a real history would.
            created = [now - timedelta(seconds=count - index) for index in indexes]
            connection.execute(
                insert(User),
                [
                    {
                        "id": first_user + index,
                        "ext_id": f"seeded{index}",
                        "login_id": f"seeded{index}",
                        "client_id": client_id,
                        "created": moment,
                        "last_modified": moment,
                        "version": 1,
                    }
                    for index, moment in zip(indexes, created, strict=True)
                ],
            )
            connection.execute(
                insert(credentials),
                [
                    {
                        "id": first_credential + index,
                        "ext_id": f"seeded-ticket{index}",
                        "kind": "TICKET",
                        "client_id": client_id,
                        "user_id": first_user + index,
                        "policy_id": policy_id,
                        "state_name": "active",
                        "state_change_reason": "initialized",
                        "successful_login_count": 0,
                        "failed_login_count": 0,
                        "valid_from": moment,
                        "valid_to": moment + lifetime,
                        "created": moment,
                        "last_modified": moment,
                        "version": 1,
                    }
                    for index, moment in zip(indexes, created, strict=True)
                ],
            )
            connection.execute(
                insert(tickets),
                [
                    {
                        "id": first_credential + index,
                        "ticket_hash": ticket_hash,
                        "failure_count": 0,
                        "success_count": 0,
                        "reset_count": 0,
                    }
                    for index in indexes
                ],
            )
            if (start // batch) % 8 == 0:
                log(f"  seeded {start + len(indexes):,} of {count:,} ticket credentials")
    engine.dispose()


def users_with_tickets(database_url: str, limit: int = 20_000) -> list[str]:
    from sqlalchemy import create_engine, select

    from app.models import TICKET, Client, Credential, User

    engine = create_engine(database_url)
    with engine.connect() as connection:
        ext_ids = connection.scalars(
            select(User.ext_id)
            .join(Credential, Credential.user_id == User.id)
            .join(Client, Client.id == User.client_id)
            .where(Client.ext_id == CLIENT, Credential.kind == TICKET)
            .order_by(Credential.id.desc())
            .limit(limit)
        ).all()
    engine.dispose()
    return list(ext_ids)


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(REPO / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head() or "none"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def scale_database(settings: Settings, directory: Path, encryption_key: str) -> Path:
    """A copy of the cached SQLite database holding the seeded ticket credentials (the
    cache is built on first use, and again when the migrations change)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"scale-{head_revision()}-{settings.scale_credentials}.sqlite"
    if not cached.exists():
        log(f"building the scale cache {cached.name} (once; later runs copy it)")
        building = cached.with_suffix(".building")
        building.unlink(missing_ok=True)
        started = time.monotonic()
        migrate(sqlite_url(building), encryption_key)
        seed_client(sqlite_url(building), encryption_key)
        seed_tickets(sqlite_url(building), settings.scale_credentials)
        # One self-contained file: fold the WAL back in.
        import sqlite3

        connection = sqlite3.connect(building)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.close()
        building.rename(cached)
        Path(f"{building}-writer.lock").unlink(missing_ok=True)  # app/sqlite.py's
        log(f"scale cache built in {time.monotonic() - started:.0f} s")
    target = directory / "scale.sqlite"
    shutil.copyfile(cached, target)
    return target


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Server:
    """One gunicorn master and its workers, started with the service's gunicorn.conf.py."""

    def __init__(
        self,
        name: str,
        app_spec: str,
        settings: Settings,
        log_path: Path,
        environment: dict[str, str] | None = None,
        ready_path: str = "/health/live",
        pythonpath: Path | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.ready_path = ready_path
        command = [
            str(BIN / "gunicorn"),
            "--config",
            str(REPO / "gunicorn.conf.py"),
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(settings.workers),
        ]
        if pythonpath is not None:
            command += ["--pythonpath", str(pythonpath)]
        command.append(app_spec)
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("BIND", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "PORT")
            and not key.startswith("BENCH_")
        }
        env.update(environment or {})
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        log(f"starting {name}: {' '.join(command[1:])}")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base_url + self.ready_path, timeout=2) as reply:
                    if reply.status == 200 and len(self.worker_pids()) >= 1:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s")

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def peak_rss_mb(self) -> dict[int, float]:
        """VmHWM (peak resident set) of each worker, in MB."""
        peaks = {}
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1]) / 1024
        return peaks

    def cpu_seconds(self) -> float:
        """The CPU time (user and system) the workers have used so far."""
        ticks = 0
        for pid in self.worker_pids():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            # The fields after the command name: utime and stime are the 12th and 13th.
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        log(f"stopped {self.name}")


def request_json(
    method: str, url: str, key: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


# --------------------------------------------------------------------------- wrk


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


# --------------------------------------------------------------------------- runs


def start_reference(settings: Settings, directory: Path) -> Server:
    """The bare Flask route, up for the whole run (idle while the service is measured)."""
    server = Server(
        "reference",
        "reference_app:app",
        settings,
        directory / "reference.log",
        ready_path="/reference",
        pythonpath=BENCH,
    )
    try:
        server.wait_ready()
        status, _ = request_json("POST", server.base_url + "/reference", body={})
        assert status == 201, status
    except BaseException:
        server.stop()
        raise
    return server


def run_reference(settings: Settings, server: Server) -> dict:
    scenario = Scenario("reference POST (bare Flask)", "-", "reference.lua", [], [])
    return measure(settings, server, scenario)


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
    server = Server(
        f"service [{label}]",
        "wsgi:app",
        settings,
        directory / f"service-{label}.log",
        environment={
            "DATABASE_URL": database_url,
            "BOOTSTRAP_API_KEY": api_key,
            "CREDENTIAL_ENCRYPTION_KEY": encryption_key,
            "APP_ENV": "production",
            "LOG_LEVEL": "INFO",
        },
    )
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
            servers[side] = Server(
                f"service [{side}]",
                "wsgi:app",
                settings,
                directory / f"service-{side}.log",
                environment={
                    "DATABASE_URL": url,
                    "BOOTSTRAP_API_KEY": api_key,
                    "CREDENTIAL_ENCRYPTION_KEY": encryption_key,
                    "APP_ENV": "production",
                    "LOG_LEVEL": "INFO",
                },
            )
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


# --------------------------------------------------------------------------- report


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


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is missing: `apt-get install -y wrk` (make bench does it)", file=sys.stderr)
        return 2
    settings = Settings.from_environment()
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    encryption_key = base64.b64encode(os.urandom(32)).decode()
    report: dict[str, Any] = {
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
    log(f"load average {report['load_average_before']} on {os.cpu_count()} CPUs")
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

    add_ratios(figures)
    report["figures"] = figures
    report["targets"] = targets(figures)
    report["load_average_after"] = load_average()
    result_file = RESULTS / f"{stamp}.json"
    result_file.write_text(json.dumps(report, indent=2) + "\n")
    if not BENCHMARKS.exists():
        BENCHMARKS.write_text(BENCHMARKS_HEADER)
    with BENCHMARKS.open("a") as benchmarks:
        benchmarks.write(benchmarks_row(report))

    print()
    print(
        f"{report['date']}, commit {report['commit']}, {report['machine']['nproc']} x "
        f"{report['machine']['cpu']}; {settings.workers} workers, {settings.connections} "
        f"connections, {settings.threads} wrk threads, {settings.duration} s per scenario; "
        f"load average {report['load_average_before']} -> {report['load_average_after']}"
    )
    print(table(figures, settings.scale_credentials))
    print()
    for check in report["targets"]:
        state = {True: "pass", False: "MISS", None: "not measured"}[check["met"]]
        print(f"  {state:<12} {check['target']}: {check['value']} (goal {check['goal']})")
    print(f"\nwritten: {result_file.relative_to(REPO)}, row appended to BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
