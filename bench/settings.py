"""The bench's settings (BENCH_* environment variables), its paths and constants, and its
log line. Importing it puts the repository on ``sys.path``, for the app's own modules."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
