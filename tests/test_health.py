"""GET /health/live and /health/ready: the probes of load balancers and orchestrators."""

from __future__ import annotations

import os
import socket

import pytest
from sqlalchemy import event

from app import readiness
from app.extensions import db
from app.migrations import MIGRATIONS
from tests.support import make_app


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_databases() -> list[str]:
    urls = ["sqlite:////nonexistent-directory/nevisidm.db"]
    if os.environ.get("TEST_DATABASE_URL"):
        urls.append(f"postgresql://postgres@127.0.0.1:{closed_port()}/nevisidm")
    return urls


def test_live_answers_without_touching_the_database(app, client):
    checkouts = []
    with app.app_context():
        event.listen(db.engine, "checkout", lambda *args: checkouts.append(args))
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert checkouts == []


@pytest.mark.parametrize("url", unreachable_databases())
def test_live_answers_while_the_database_is_unreachable(url):
    assert make_app(url).test_client().get("/health/live").status_code == 200


def test_ready_when_the_schema_is_at_the_newest_migration(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_probes_need_no_authentication(client):
    for path in ("/health/live", "/health/ready"):
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("url", unreachable_databases())
def test_not_ready_while_the_database_is_unreachable(url):
    response = make_app(url).test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.json == {
        "errors": [
            {"code": "errors.serviceUnavailable", "message": "The database is not reachable"}
        ]
    }


def test_not_ready_before_the_database_is_migrated(tmp_path):
    response = make_app(f"sqlite:///{tmp_path / 'empty.db'}").test_client().get("/health/ready")
    assert response.status_code == 503
    [entry] = response.json["errors"]
    assert entry["code"] == "errors.serviceUnavailable"
    assert "flask db upgrade" in entry["message"]


def test_not_ready_when_the_schema_is_behind_the_code(client, monkeypatch):
    _, known = readiness.shipped_revisions(MIGRATIONS)
    monkeypatch.setattr(
        readiness,
        "shipped_revisions",
        lambda directory: (frozenset({"9999_next"}), known | {"9999_next"}),
    )
    response = client.get("/health/ready")
    assert response.status_code == 503
    [entry] = response.json["errors"]
    assert entry["code"] == "errors.serviceUnavailable"
    assert "9999_next" in entry["message"]


def test_ready_when_a_newer_release_has_migrated_the_schema(client, monkeypatch):
    # During a rolling upgrade the old instances meet a revision they do not know.
    monkeypatch.setattr(
        readiness,
        "shipped_revisions",
        lambda directory: (frozenset({"0000_older"}), frozenset({"0000_older"})),
    )
    assert client.get("/health/ready").status_code == 200


def test_migration_heads_are_read_once_per_process(client):
    client.get("/health/ready")
    before = readiness.shipped_revisions.cache_info()
    client.get("/health/ready")
    after = readiness.shipped_revisions.cache_info()
    assert after.misses == before.misses
    assert after.hits == before.hits + 1


def test_not_ready_without_the_migration_scripts(client, monkeypatch, tmp_path):
    # Without them this release cannot tell which schema it needs.
    (tmp_path / "versions").mkdir()
    assert readiness.shipped_revisions(tmp_path) == (frozenset(), frozenset())
    monkeypatch.setattr(readiness, "MIGRATIONS", tmp_path)
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json["errors"][0]["message"] == (
        "The migration scripts of this release are missing"
    )
