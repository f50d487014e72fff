"""The bench's servers: gunicorn masters and their workers (the service, and the bare Flask
reference of bench/reference_app.py) on free ports of 127.0.0.1, their workers' peak RSS and
CPU time from /proc, and a JSON request helper."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from settings import BENCH, BIN, HOST, REPO, Settings, log


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
        # Workers are not recycled during a run: the CPU time per request is read from the
        # workers that served it (a replaced worker's time would go missing).
        env["GUNICORN_MAX_REQUESTS"] = "0"
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


def service_server(
    settings: Settings,
    label: str,
    database_url: str,
    directory: Path,
    api_key: str,
    encryption_key: str,
) -> Server:
    """``gunicorn wsgi:app`` on ``database_url`` (started; not yet ready), as in production,
    with ``api_key`` as its bootstrap key."""
    return Server(
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
