"""`make bench-instructions`: the CPU instructions one request costs, counted by valgrind.

`make bench` measures time, which a shared machine's other load moves by 15 % and more
between runs. This counts the instructions a request executes in the service's own process
(Python, the drivers, SQLite; not the kernel, not the database server) with valgrind's
callgrind, which gives the same count for the same code whatever else the machine is doing:
a change's cost shows in one run, and the ratio to the reference's count bounds what the
service can reach in `make bench` while both are CPU-bound.

Each scenario runs in a process of its own under valgrind, on a fresh SQLite database:
set-up and warm-up requests uncounted, then BENCH_INSTRUCTION_REQUESTS (200) requests through
the WSGI app, counted (callgrind collects only inside ``functools.reduce``, which drives
them). Scenarios (BENCH_INSTRUCTION_SCENARIOS): reference (bench/reference_app.py's POST),
ticket (POST ticket, a new user each time), vasco (POST vasco, two blocks), get (GET ticket).
Counts vary by about 0.2 % between runs (hash randomisation).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

SCENARIOS = ("reference", "ticket", "vasco", "get")
API_KEY = "bench-instructions-" + "k" * 24


def environ(method: str, path: str, body: bytes = b"") -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {API_KEY}",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def service(directory: str, users: int):
    """The service on a fresh SQLite database with ``users`` users, and its bench client."""
    from seeding import migrate, seed_client, seed_users, sqlite_url

    url = sqlite_url(Path(directory) / "service.sqlite")
    key = base64.b64encode(os.urandom(32)).decode()
    migrate(url, key)
    seed_client(url, key)
    seed_users(url, "u", users)
    from app import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "CREDENTIAL_ENCRYPTION_KEY": key,
            "BOOTSTRAP_API_KEY": API_KEY,
            "APP_ENV": "production",
            "LOG_LEVEL": "INFO",
        }
    )


def child(scenario: str, count: int, warm_up: int) -> None:
    """Set up ``scenario``, warm it up, then run ``count`` requests inside
    ``functools.reduce`` (the only place callgrind counts)."""
    directory = tempfile.mkdtemp(prefix="bench-instructions-")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", directory)
    core = "/nevisidm/api/core/v1/bench"
    if scenario == "reference":
        from reference_app import app

        def request(index: int) -> dict:
            return environ("POST", "/reference", b"{}")
    else:
        from scenarios import vasco_blocks

        app = service(directory, count + warm_up + 64)
        blocks = [block.split("=", 1) for block in vasco_blocks()]

        def request(index: int) -> dict:
            if scenario == "ticket":
                return environ("POST", f"{core}/users/u{index}/ticket", b"{}")
            if scenario == "get":
                return environ("GET", f"{core}/users/u{index % 64}/ticket")
            body = {
                "extId": f"v{index}",
                "vascoTokens": [{"authMode": mode, "data": data} for mode, data in blocks],
            }
            return environ("POST", f"{core}/vasco", json.dumps(body).encode())

        if scenario == "get":
            for index in range(64):
                call(app, environ("POST", f"{core}/users/u{index}/ticket", b"{}"), "201")
    expected = {"reference": "201", "ticket": "201", "vasco": "201", "get": "200"}[scenario]
    first = count + 64  # the warm-up's own users, after the counted ones
    for index in range(warm_up):
        call(app, request(first + index), expected)
    import gc

    gc.collect()
    gc.freeze()  # as gunicorn.conf.py's post_worker_init
    functools.reduce(lambda _, index: call(app, request(index), expected), range(count), None)


def call(app, environ: dict, expected: str) -> None:
    statuses = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(body)
    getattr(body, "close", lambda: None)()
    if not statuses[0].startswith(expected):
        raise SystemExit(f"{environ['PATH_INFO']}: {statuses[0]}, not {expected}")


def count_instructions(scenario: str, count: int, warm_up: int) -> int:
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--toggle-collect=functools_reduce",
            f"--callgrind-out-file={output}",
            sys.executable,
            __file__,
            "--child",
            scenario,
            str(count),
            str(warm_up),
        ]
        finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if finished.returncode != 0:
            sys.stderr.write(finished.stderr[-3000:])
            raise SystemExit(f"{scenario}: valgrind exited with {finished.returncode}")
        totals = re.search(r"^(?:summary|totals): (\d+)", output.read_text(), re.MULTILINE)
        return int(totals.group(1))


def main() -> int:
    count = int(os.environ.get("BENCH_INSTRUCTION_REQUESTS", 200))
    warm_up = int(os.environ.get("BENCH_INSTRUCTION_WARMUP", 50))
    chosen = os.environ.get("BENCH_INSTRUCTION_SCENARIOS", ",".join(SCENARIOS)).split(",")
    scenarios = ["reference", *(name for name in chosen if name != "reference")]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {sorted(unknown)}")
    per_request = {}
    for scenario in scenarios:
        print(f"[instructions] {scenario}: {count} requests under callgrind", file=sys.stderr)
        per_request[scenario] = count_instructions(scenario, count, warm_up) / count
    reference = per_request["reference"]
    print(f"{'scenario':<12} {'instructions/request':>22} {'x reference':>12}")
    for scenario, instructions in per_request.items():
        print(f"{scenario:<12} {instructions:>22,.0f} {instructions / reference:>12.2f}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(main())
