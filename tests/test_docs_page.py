"""/docs: Swagger UI, its files served by the service itself, renders every operation of
/openapi.json in headless Chromium (Debian's ``chromium``) against gunicorn, with every host
name but the loopback unresolvable, so that the page is shown to work without internet.

Set DOCS_SCREENSHOT=docs/api-docs.png to refresh the README's screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, gunicorn

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every host name fails to resolve: a page that needed a CDN would stay blank.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=20000",
    "--hide-scrollbars",
    "--window-size=1280,2000",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("chromium is missing and cannot be installed: needs apt-get, as root")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium"]
    for step in (install, ["apt-get", "update"], install):
        completed = subprocess.run(
            step, env=environment, capture_output=True, text=True, timeout=1200
        )
        if step is install and completed.returncode == 0:
            break
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"chromium could not be installed: {completed.stderr[-1000:]}")
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """gunicorn serving ``wsgi:app``; yields its base URL. The page needs no database."""
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'docs.db'}",
        "LOG_LEVEL": "WARNING",
    }
    with gunicorn(environment, tmp_path / "gunicorn.log", workers=1, migrate=False) as port:
        yield f"http://127.0.0.1:{port}"


def run_chromium(chromium: str, profile: Path, *arguments: str) -> str:
    completed = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_docs_page_renders_every_operation_without_internet(chromium, served, tmp_path):
    with urllib.request.urlopen(f"{served}/openapi.json", timeout=30) as response:
        document = json.load(response)
    operations = [
        (method.upper(), path, operation["summary"])
        for path, path_item in document["paths"].items()
        for method, operation in path_item.items()
        if method != "parameters"
    ]

    dom = run_chromium(chromium, tmp_path / "profile", "--dump-dom", f"{served}/docs")

    assert "Failed to load API definition" not in dom
    assert document["info"]["title"] in dom
    assert dom.count('class="opblock opblock-') == len(operations)
    for method, path, summary in operations:
        assert f'data-path="{path}"' in dom, path
        assert f">{method}</span>" in dom, method
        assert summary.split("\n")[0] in dom, summary

    screenshot = tmp_path / "api-docs.png"
    run_chromium(chromium, tmp_path / "profile", f"--screenshot={screenshot}", f"{served}/docs")
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("DOCS_SCREENSHOT"):
        shutil.copyfile(screenshot, ROOT / os.environ["DOCS_SCREENSHOT"])
