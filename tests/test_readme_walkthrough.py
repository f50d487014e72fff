"""The README's curl walkthroughs work when pasted, against gunicorn serving ``wsgi:app``."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.support import ROOT, gunicorn

BOOTSTRAP_KEY = "local-demo-key-change-me"


def walkthrough_script() -> str:
    """The shell blocks of every README section whose title says "walkthrough", in order,
    without the one that starts the server (the test starts it)."""
    readme = (ROOT / "README.md").read_text()
    blocks = []
    for section in re.split(r"^## ", readme, flags=re.M)[1:]:
        title = section.splitlines()[0]
        if "walkthrough" not in title.lower():
            continue
        for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
            if "make run" not in block:
                blocks.append(block)
    assert blocks, "the README has no walkthrough"
    return "\n".join(blocks)


@pytest.fixture
def served(tmp_path) -> Iterator[int]:
    """gunicorn with 2 workers over a fresh, migrated SQLite database; yields its port."""
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'walkthrough.db'}",
        "BOOTSTRAP_API_KEY": BOOTSTRAP_KEY,
    }
    with gunicorn(environment, tmp_path / "gunicorn.log") as port:
        yield port


def test_readme_walkthrough_runs_against_gunicorn(served, tmp_path):
    script = walkthrough_script().replace("127.0.0.1:8080", f"127.0.0.1:{served}")
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = completed.stdout
    assert completed.returncode == 0, completed.stderr + output
    assert "HTTP/1.1 201 CREATED" in output
    assert '"plainTicket"' in output and '"type":"Ticket Authorization"' in output
    assert "errors.ticketExists" in output
    assert '"successCount":1' in output and "errors.invalidCredential" in output
    assert "moved to the new portal" in output and '"resetCount":1' in output
    assert "\n204\n" in output and "has no ticket credential" in output
    assert '"type":"Vasco"' in output and "errors.vascoExists" in output
    assert "No VASCO credential 'dp-0001' in client 'acme'" in output
    assert '"totalResult":1' in output and '"_classifications":{}' in output
    assert '"languageCode":"de"' in output and '"userState":"disabled"' in output
    assert output.rstrip().endswith("204\n204\n204")
    assert "errors.fatalError" not in output and "errors.serviceUnavailable" not in output
