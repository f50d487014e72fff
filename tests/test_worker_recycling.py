"""gunicorn.conf.py recycles workers: a worker exits after GUNICORN_MAX_REQUESTS requests
(plus up to GUNICORN_MAX_REQUESTS_JITTER) and a fresh one takes its place (API.md
section 8, "Memory")."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import BIN, ROOT, gunicorn

# Variables of the outer environment that would change what gunicorn is given.
_OURS = ("PROMETHEUS_MULTIPROC_DIR", "DATABASE_URL", "BOOTSTRAP_API_KEY")


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    outer = {key: value for key, value in os.environ.items() if key not in _OURS}
    outer = {key: value for key, value in outer.items() if not key.startswith("GUNICORN_")}
    return {
        **outer,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'nevisidm.db'}",
        # Reading the configuration makes a metrics folder unless one is named.
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        **settings,
    }


def resolved_settings(tmp_path: Path, **settings: str) -> dict[str, str]:
    """gunicorn's settings as it resolves them from gunicorn.conf.py (``--print-config``)."""
    printed = subprocess.run(
        [BIN / "gunicorn", "--print-config", "wsgi:app"],
        cwd=ROOT,
        env=environment(tmp_path, **settings),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    pairs = (line.split("=", 1) for line in printed.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_max_requests_with_jitter_by_default_and_from_the_environment(tmp_path):
    default = resolved_settings(tmp_path)
    assert (default["max_requests"], default["max_requests_jitter"]) == ("10000", "1000")

    configured = resolved_settings(tmp_path, GUNICORN_MAX_REQUESTS="500")
    assert (configured["max_requests"], configured["max_requests_jitter"]) == ("500", "50")


def get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def live_requests_counted(metrics: str) -> tuple[float, float]:
    """The requests counter and the duration histogram's count for GET /health/live 200."""
    counted = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.labels.get("endpoint") == "/health/live" and sample.name in (
                "nevisidm_http_requests_total",
                "nevisidm_http_request_duration_seconds_count",
            ):
                counted[sample.name] = sample.value
    return (
        counted["nevisidm_http_requests_total"],
        counted["nevisidm_http_request_duration_seconds_count"],
    )


def test_a_worker_is_replaced_after_max_requests(tmp_path):
    """One worker, recycled every 5 requests: 12 requests are all answered, by three
    workers in turn; the metrics still count all 12, from the live worker's files and one
    archive per type that the recycled workers' counts were added to."""
    log = tmp_path / "gunicorn.log"
    settings = environment(tmp_path, GUNICORN_MAX_REQUESTS="5", GUNICORN_MAX_REQUESTS_JITTER="0")
    with gunicorn(settings, log, workers=1) as port:
        for _ in range(12):
            status, body = get(port, "/health/live")
            assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, metrics = get(port, "/metrics")
        assert status == 200
        assert live_requests_counted(metrics) == (12, 12)
        files = sorted(path.name for path in (tmp_path / "metrics").iterdir())
    messages = [
        json.loads(line)["message"] for line in log.read_text().splitlines() if line.startswith("{")
    ]
    booted = [message for message in messages if message.startswith("Booting worker with pid")]
    assert len(set(booted)) == 3, messages
    assert messages.count("Autorestarting worker after current request.") == 2, messages
    live_pid = booted[-1].rsplit(" ", 1)[-1]
    kept = {f"{kind}_{live_pid}.db" for kind in ("counter", "histogram")}
    assert set(files) == {"counter_archive.db", "histogram_archive.db", *kept}, files
