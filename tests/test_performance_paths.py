"""What the fast paths promise (issue 6, bench/): the principal cache, the SQLite writers'
queue and their checkpoints."""

from __future__ import annotations

import base64
import fcntl
import json
import math
import os
import sqlite3
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import delete, inspect, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm.exc import DetachedInstanceError
from sqlalchemy.types import TypeDecorator

from app.auth import BOOTSTRAP_PRINCIPAL, PERMISSIONS, BootstrapPrincipal
from app.extensions import db
from app.models import TICKET_POLICY, Policy, Principal
from app.models.types import UTCDateTime
from app.repositories import principals
from app.storage import current_work, detached_from_row
from app.storage import statements as app_statements
from app.storage.sqlite import checkpoints as sqlite_module
from app.storage.sqlite.checkpoints import CHECKPOINT_EVERY_COMMITS
from app.storage.sqlite.connection import QueuedWriterConnection
from app.storage.sqlite.writer_lock import WRITER_LOCK_SUFFIX
from tests.support import CORE, MISSING_PARTS, bearer, count_rows, gunicorn, make_app

PERMISSIONS_URL = "/nevisidm/api/principal/v1/permissions"


def remove_every_principal(app) -> None:
    with app.app_context():
        db.session.execute(delete(Principal))
        db.session.commit()


def test_a_removed_key_works_until_the_cache_entry_expires(client, app, make_key, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(principals.time, "monotonic", lambda: now[0])
    headers = bearer(make_key(*PERMISSIONS))
    assert client.get(PERMISSIONS_URL, headers=headers).status_code == 200

    remove_every_principal(app)
    now[0] += app.config["PRINCIPAL_CACHE_SECONDS"] - 1
    assert client.get(PERMISSIONS_URL, headers=headers).status_code == 200
    now[0] += 2
    assert client.get(PERMISSIONS_URL, headers=headers).status_code == 401


def test_without_the_cache_a_removed_key_stops_at_once(database_url):
    app = make_app(database_url, PRINCIPAL_CACHE_SECONDS=0)
    try:
        with app.app_context():
            _, key = principals.PrincipalRepository().create("uncached", list(PERMISSIONS), None)
        client = app.test_client()
        assert client.get(PERMISSIONS_URL, headers=bearer(key)).status_code == 200
        remove_every_principal(app)
        assert client.get(PERMISSIONS_URL, headers=bearer(key)).status_code == 401
    finally:
        remove_every_principal(app)


def test_the_bootstrap_upsert_forgets_the_cached_principals(database_url, app):
    bootstrap = make_app(database_url, BOOTSTRAP_API_KEY="bootstrap-key-for-the-cache-test")
    client = bootstrap.test_client()
    headers = bearer("bootstrap-key-for-the-cache-test")
    assert client.get(PERMISSIONS_URL, headers=headers).status_code == 200
    with bootstrap.app_context():
        assert len(principals.PrincipalCache.of_app()._entries) == 1
        principals.PrincipalRepository().upsert(
            name=BOOTSTRAP_PRINCIPAL,
            key="another-key-0123456789",
            permissions=[],
            client_ext_ids=None,
        )
        assert principals.PrincipalCache.of_app()._entries == {}
    assert client.get(PERMISSIONS_URL, headers=headers).status_code == 401
    assert bootstrap.extensions[BootstrapPrincipal.EXTENSION]._done


def test_the_cache_holds_at_most_its_size():
    cache = principals.PrincipalCache(seconds=60, size=3)
    principal = principals.AuthenticatedPrincipal("p", (), None)
    for index in range(5):
        cache.put(f"hash-{index}", principal)
    assert list(cache._entries) == ["hash-2", "hash-3", "hash-4"]


def sqlite_path(app) -> str:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite only")
        return db.engine.url.database


def writer_lock_is_free(path: str) -> bool:
    descriptor = os.open(path + WRITER_LOCK_SUFFIX, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


def test_writers_hold_the_queue_lock_only_inside_their_transaction(app, admin, acme):
    path = sqlite_path(app)
    with app.app_context():
        work = current_work()
        with work.changes() as session:  # a unit of work outside a request
            assert not writer_lock_is_free(path)
            session.execute(text("SELECT 1"))
        assert writer_lock_is_free(path)
        with pytest.raises(RuntimeError), work.changes():
            assert not writer_lock_is_free(path)
            raise RuntimeError("rolled back")
        assert writer_lock_is_free(path)
        db.session.execute(text("SELECT 1"))  # a read transaction stays out of the queue
        assert writer_lock_is_free(path)
        db.session.rollback()

    response = app.test_client().post(f"{CORE}/acme/users/alice/ticket", json={}, headers=admin)
    assert response.status_code == 201
    assert writer_lock_is_free(path)


def create_users(app, admin, count: int, prefix: str = "user") -> None:
    client = app.test_client()
    for index in range(count):
        user = f"{prefix}-{index}"
        response = client.post(
            f"{CORE}/acme/users", json={"extId": user, "loginId": user}, headers=admin
        )
        assert response.status_code == 201


def test_writers_checkpoint_the_wal_themselves(app, admin, acme, monkeypatch):
    path = sqlite_path(app)
    checkpoints = []
    checkpoint = QueuedWriterConnection._checkpoint

    def counted(connection: QueuedWriterConnection):
        future = checkpoint(connection)
        checkpoints.append(future)
        return future

    monkeypatch.setattr(QueuedWriterConnection, "_checkpoint", counted)
    with app.app_context():
        assert db.session.scalar(text("PRAGMA wal_autocheckpoint")) == 0
        db.session.rollback()
    create_users(app, admin, CHECKPOINT_EVERY_COMMITS)
    # The fixture's writes and these: at least one connection crossed the mark once.
    assert 1 <= len(checkpoints) <= 2
    for future in checkpoints:
        busy, frames, copied = future.result(timeout=30)
        assert busy == 0
        # A read the next requests opened meanwhile may keep the last frames for later.
        assert 0 < copied <= frames
    # The pages are in the database file itself: a connection that ignores the WAL
    # (immutable) finds the users. It reads the file as it is, so only once no checkpoint
    # is copying into it: after one with nothing writing beside it.
    assert sqlite_module.CHECKPOINTS.request(path).result(timeout=30)[0] == 0
    assert "user-0" in users_in_the_database_file(path)


def users_in_the_database_file(path: str) -> set[str]:
    with sqlite3.connect(f"file:{quote(path)}?immutable=1", uri=True) as reader:
        return {row[0] for row in reader.execute("SELECT ext_id FROM users")}


def pragma(path: str, statement: str) -> tuple:
    with sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True) as connection:
        return connection.execute(f"PRAGMA {statement}").fetchone()


def wal_frames(path: str) -> int:
    return pragma(path, "wal_checkpoint(PASSIVE)")[1]


def test_the_wal_starts_over_while_requests_go_on_writing(app, admin, acme, monkeypatch):
    # Requests go on committing while each checkpoint copies beside them, so the WAL would
    # never find every frame copied; once it holds WAL_START_OVER_FRAMES, a copy in the
    # writers' queue lets the next commit write it from its start.
    path = sqlite_path(app)
    sqlite_module.CHECKPOINTS.request(path).result(timeout=30)
    assert pragma(path, "wal_checkpoint(TRUNCATE)")[0] == 0  # the WAL file at its shortest
    create_users(app, admin, 1, prefix="one")
    frames_per_create = wal_frames(path)
    assert 0 < frames_per_create < 2 * CHECKPOINT_EVERY_COMMITS
    start_over = frames_per_create * CHECKPOINT_EVERY_COMMITS
    monkeypatch.setattr(sqlite_module, "WAL_START_OVER_FRAMES", start_over)
    creates = 8 * CHECKPOINT_EVERY_COMMITS
    create_users(app, admin, creates)
    assert sqlite_module.CHECKPOINTS.request(path).result(timeout=30)[0] == 0
    assert {f"user-{index}" for index in range(creates)} <= users_in_the_database_file(path)
    # The WAL file holds at most the mark and the frames of the commits made until a
    # checkpoint finds it crossed (two checkpoints' worth, one running while commits go
    # on), not the frames of all the creates.
    page_size = pragma(path, "page_size")[0]
    most_frames = start_over + frames_per_create * 3 * CHECKPOINT_EVERY_COMMITS
    assert most_frames < frames_per_create * creates
    assert os.path.getsize(path + "-wal") <= 32 + (24 + page_size) * most_frames


def test_a_checkpoint_that_cannot_start_leaves_the_commit_done(app, admin, acme, monkeypatch):
    sqlite_path(app)

    def no_thread(path: str):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(sqlite_module.CHECKPOINTS, "request", no_thread)
    create_users(app, admin, CHECKPOINT_EVERY_COMMITS + 1)
    assert count_rows(app, "users") == CHECKPOINT_EVERY_COMMITS + 2  # and the fixture's alice


def test_a_checkpoint_that_fails_is_logged_and_creates_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sqlite_module, "_last_failure_logged", -math.inf)
    missing = tmp_path / "a folder?#%" / "gone.db"
    assert sqlite_module.checkpoint_wal(str(missing)) is None
    assert not missing.parent.exists()
    assert "SQLite WAL checkpoint of" in caplog.text
    caplog.clear()
    assert sqlite_module.checkpoint_wal(str(missing)) is None
    assert caplog.text == ""  # once a minute at most


def test_a_request_does_not_wait_for_the_checkpoint_it_started(app, admin, acme, monkeypatch):
    path = sqlite_path(app)
    release = threading.Event()
    started = []
    checkpoint_wal = sqlite_module.checkpoint_wal
    requests_thread = threading.get_ident()

    def held(database: str):
        started.append((database, threading.get_ident()))
        if threading.get_ident() != requests_thread:
            assert release.wait(timeout=30)
        return checkpoint_wal(database)

    futures = []
    request = sqlite_module.CHECKPOINTS.request

    def kept(database: str):
        futures.append(request(database))
        return futures[-1]

    monkeypatch.setattr(sqlite_module, "checkpoint_wal", held)
    monkeypatch.setattr(sqlite_module.CHECKPOINTS, "request", kept)
    try:
        # Every request answers while the checkpoint it started is held. The connection
        # crosses the mark three times: the first checkpoint runs (held), the second waits
        # behind it, and the third is the second.
        create_users(app, admin, 3 * CHECKPOINT_EVERY_COMMITS)
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(started) == 1
        assert started[0][0] == path
        assert started[0][1] != requests_thread
        assert len(futures) >= 3
        assert len({id(future) for future in futures}) == 2
        assert not futures[-1].running()
    finally:
        release.set()
    for future in futures:
        assert future.result(timeout=30)[0] == 0
    assert len(started) == 2


@pytest.mark.parametrize("first_request", ["ticket", "vasco"])
def test_a_new_worker_creates_a_credential_as_its_first_request(
    database_url, app, acme, make_key, tmp_path, first_request
):
    # The create paths build objects from plain rows; in a new worker no ORM query has run
    # before them to complete the mappers (the bench's first request found this).
    key = make_key(*PERMISSIONS)
    environment = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    with gunicorn(environment, tmp_path / "gunicorn.log", workers=1, migrate=False) as port:
        if first_request == "ticket":
            path, body = "/acme/users/alice/ticket", {}
        else:
            data = base64.b64encode(b"digipass block").decode()
            path, body = "/acme/vasco", {"vascoTokens": [{"authMode": "CR", "data": data}]}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{CORE}{path}",
            data=json.dumps(body).encode(),
            headers={**bearer(key), "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
            assert json.load(response)["version"] == 1
    assert count_rows(app, "credentials") == 1


def record_statements(monkeypatch) -> tuple[list[tuple[str, bool]], list[Any]]:
    """Every plain statement as it goes to the driver: its first word and whether it runs in
    a transaction (SQLite: one is open; PostgreSQL: not in autocommit, where psycopg
    begins one with the statement); and the driver connections it ran on."""
    seen: list[tuple[str, bool]] = []
    drivers: list[Any] = []
    run = app_statements._run

    def note_run(on, compiled, parameters, fetch, **options):
        # Read once the statement has run, from the connection its cursor ran on.
        def noted(cursor):
            driver, sql = cursor.connection, compiled.sql
            if isinstance(driver, sqlite3.Connection):
                seen.append((sql.split()[0], driver.in_transaction))
            else:
                seen.append((sql.split()[0], not driver.autocommit))
            drivers.append(driver)
            return fetch(cursor)

        return run(on, compiled, parameters, noted, **options)

    # Every plain statement goes to the driver through it (app/repositories/statements.py).
    monkeypatch.setattr(app_statements, "_run", note_run)
    return seen, drivers


def assert_read_apart_then_written(
    app, seen: list[tuple[str, bool]], drivers: list[Any], reads: int = 1
) -> None:
    """A create's statements: its ``reads`` (the api key's lookup, the owner's), each by
    itself, then PostgreSQL: one statement that commits itself, on a connection that went
    back to the pool as it came (in transactions mode again); SQLite: both INSERTs in one
    transaction."""
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        assert seen == [("SELECT", False)] * reads + [("WITH", False)]
        assert [driver.autocommit for driver in drivers] == [False] * (reads + 1)
    else:
        assert seen == [("SELECT", False)] * reads + [("INSERT", True), ("INSERT", True)]


@pytest.mark.parametrize("principal_cached", [True, False])
def test_a_ticket_is_created_in_one_statement_that_commits_itself_on_postgresql(
    client, admin, acme, app, monkeypatch, principal_cached
):
    # PostgreSQL: no BEGIN and COMMIT round trips around the one INSERT (a data-modifying
    # WITH, atomic by itself), whether or not the api key had to be looked up first.
    # SQLite: the user's read by itself, then both INSERTs in one transaction: the writers'
    # queue is held for the writes alone.
    if not principal_cached:
        with app.app_context():
            principals.PrincipalCache.of_app().clear()
    seen, drivers = record_statements(monkeypatch)
    response = client.post(f"{CORE}/acme/users/alice/ticket", json={}, headers=admin)
    assert response.status_code == 201
    assert_read_apart_then_written(app, seen, drivers, reads=1 if principal_cached else 2)
    assert count_rows(app, "ticket_credentials") == 1


def test_objects_built_from_plain_rows_are_detached_with_their_identity(app):
    # The hot paths build their objects from plain rows (app/repositories/policies.py).
    with app.app_context():
        row = {"id": 7, "ext_id": "p", "policy_type": TICKET_POLICY, "parameters": {}}
        policy = detached_from_row(Policy, {**row, "client_id": 3})
        state = inspect(policy)
        assert state.detached
        assert state.key == inspect(Policy).identity_key_from_primary_key([7])
        assert (policy.id, policy.ext_id, policy.client_id, policy.parameters) == (7, "p", 3, {})
        with pytest.raises(DetachedInstanceError):
            _ = policy.name  # a column the row did not have
        with pytest.raises(InvalidRequestError):
            _ = policy.client  # a relationship nobody set
        assert not state.modified


def test_a_vasco_create_reads_apart_and_writes_in_one_statement_or_transaction(
    client, admin, acme, app, monkeypatch
):
    # The client's read runs by itself. PostgreSQL: the credential's row and its blocks in
    # one statement that commits itself. SQLite: both INSERTs in one transaction, begun by
    # the first (the writers' queue is held for the writes alone).
    seen, drivers = record_statements(monkeypatch)
    tokens = [
        {"authMode": mode, "data": base64.b64encode(f"digipass block {mode}".encode()).decode()}
        for mode in ("CR", "RO")
    ]
    response = client.post(
        f"{CORE}/acme/vasco", json={"extId": "v1", "vascoTokens": tokens}, headers=admin
    )
    assert response.status_code == 201
    assert response.json["vascoTokens"] == tokens
    assert_read_apart_then_written(app, seen, drivers)
    assert count_rows(app, "vasco_token_blocks") == 2
    # Read back: the blocks are in their order and open.
    assert client.get(f"{CORE}/acme/vasco/v1", headers=admin).json["vascoTokens"] == tokens


def test_a_ticket_is_shown_from_one_statement_outside_any_transaction(
    client, admin, acme, app, monkeypatch
):
    # GET reads the ticket, its user, client and policy in one plain statement, by itself:
    # no BEGIN and no ROLLBACK around it, and the connection goes back to the pool in
    # transactions mode. What it shows is what the ORM's objects show (verify's response),
    # for a ticket whose fields differ from one another and from a new ticket's.
    url = f"{CORE}/acme/users/alice/ticket"
    policy = client.post(
        f"{CORE}/acme/policies",
        json={"extId": "strict", "name": "Strict", "policyType": "TicketPolicy"},
        headers=admin,
    )
    assert policy.status_code == 201, policy.json
    created = client.post(
        url,
        json={"policyExtId": "strict", "identification": "kiosk", "context": "https://p.example/"},
        headers=admin,
    )
    assert created.status_code == 201, created.json
    reset = client.post(f"{url}/reset", json={}, headers=admin)
    assert reset.status_code == 200, reset.json
    for _ in range(2):
        assert (
            client.post(f"{url}/verify", json={"ticket": "wrong"}, headers=admin).status_code == 422
        )
    verified = client.post(
        f"{url}/verify", json={"ticket": reset.json["plainTicket"]}, headers=admin
    )
    assert verified.status_code == 200, verified.json
    counters = ("failureCount", "successCount", "resetCount", "successfulLoginCount")
    assert [verified.json[name] for name in counters] == [2, 1, 1, 1]
    assert verified.json["policyExtId"] == "strict"

    seen, drivers = record_statements(monkeypatch)
    shown = client.get(url, headers=admin)
    assert shown.status_code == 200
    assert shown.json == verified.json
    assert seen == [("SELECT", False)]
    if isinstance(drivers[0], sqlite3.Connection):
        assert not drivers[0].in_transaction
    else:
        assert drivers[0].autocommit is False


@MISSING_PARTS
def test_a_missing_ticket_to_show_is_named_from_statements_read_by_themselves(
    client, admin, acme, monkeypatch, client_ext_id, user_ext_id, message
):
    seen, _ = record_statements(monkeypatch)
    response = client.get(f"{CORE}/{client_ext_id}/users/{user_ext_id}/ticket", headers=admin)
    assert response.status_code == 404
    assert response.json == {"errors": [{"code": "errors.noRecord", "message": message}]}
    assert seen and {in_transaction for _, in_transaction in seen} == {False}


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 23, 17, 5, 9, tzinfo=UTC),
        datetime(2026, 11, 23, 17, 5, 9, 120034, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),  # another day in UTC
        datetime(83, 1, 2, 3, 4, 5, tzinfo=UTC),  # a year of fewer than four digits
        None,
    ],
)
def test_dates_are_written_to_sqlite_as_sqlalchemy_writes_them(value):
    # UTCDateTime writes SQLite's DATETIME text in one step; the stored text must be what
    # SQLAlchemy's own two steps write, or comparisons and ordering in SQL would change.
    dialect = sqlite_dialect.dialect()
    column_type = UTCDateTime().dialect_impl(dialect)
    assert column_type._sqlite_text(dialect)  # the one-step conversion applies
    own = column_type.bind_processor(dialect)
    sqlalchemy_steps = TypeDecorator.bind_processor(column_type, dialect)
    assert own(value) == sqlalchemy_steps(value)


def test_a_naive_date_is_refused_on_sqlite_too():
    dialect = sqlite_dialect.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    with pytest.raises(ValueError, match="naive"):
        process(datetime(2026, 11, 23, 17, 5, 9))


@pytest.mark.parametrize(
    "ext_id", ["plain", "with space", "ümlaut-日本", "a!$&'()*+,;=:@~b", "per%25cent", "q?h#x"]
)
@pytest.mark.parametrize("script_root", ["", "/idm ü"])
def test_a_creates_location_is_what_url_for_builds(app, client, admin, acme, ext_id, script_root):
    """The credential creates build their ``Location`` without ``url_for``
    (app/api/responses.py), under whatever script root the app is mounted at."""
    from flask import url_for
    from werkzeug.urls import iri_to_uri

    from tests.support import tokens

    base_url = f"http://localhost{quote(script_root)}"
    response = client.post(
        f"{CORE}/acme/users", json={"extId": ext_id, "loginId": ext_id}, headers=admin
    )
    assert response.status_code == 201, response.json
    path = f"{CORE}/acme/users/{quote(ext_id, safe='')}/ticket"
    ticket = client.post(path, json={}, headers=admin, base_url=base_url)
    vasco = client.post(
        f"{CORE}/acme/vasco",
        json={"extId": ext_id, "vascoTokens": tokens("a")},
        headers=admin,
        base_url=base_url,
    )
    assert (ticket.status_code, vasco.status_code) == (201, 201)
    with app.test_request_context(base_url=base_url):
        expected_ticket = url_for("tickets.create_ticket", client_ext_id="acme", user_ext_id=ext_id)
        expected_vasco = url_for("vasco.get_vasco", client_ext_id="acme", vasco_ext_id=ext_id)
    assert expected_ticket.startswith(f"{script_root}{CORE}/")
    # werkzeug turns a Location into a URI as it sends it, as it turned url_for's.
    assert ticket.headers["Location"] == iri_to_uri(expected_ticket)
    assert vasco.headers["Location"] == iri_to_uri(expected_vasco)
    for location in (ticket.headers["Location"], vasco.headers["Location"]):
        found = client.get(location.removeprefix(quote(script_root)), headers=admin)
        assert found.status_code == 200


def test_responses_are_what_jsonify_makes(app, client, admin, acme):
    """The body, status and headers of ``json_response`` (app/api/responses.py): what
    flask-smorest made with ``jsonify``, non-ASCII text escaped as it escapes it; a 204 has
    neither body nor type."""
    from flask import jsonify

    users = f"{CORE}/acme/users"
    response = client.post(users, json={"extId": "ü日本", "loginId": "ü"}, headers=admin)
    assert response.status_code == 201
    response = client.post(f"{users}/{quote('ü日本')}/ticket", json={}, headers=admin)
    assert response.status_code == 201
    assert b"\\u00fc\\u65e5\\u672c" in response.get_data()  # ensure_ascii, as jsonify's
    with app.test_request_context():
        made = jsonify(response.json)
    assert response.get_data() == made.get_data()
    assert response.headers["Content-Type"] == made.headers["Content-Type"]
    assert response.headers["Content-Length"] == made.headers["Content-Length"]

    deleted = client.delete(f"{users}/{quote('ü日本')}/ticket", headers=admin)
    assert deleted.status_code == 204
    assert deleted.get_data() == b""
    assert "Content-Type" not in deleted.headers
    assert "Content-Length" not in deleted.headers
