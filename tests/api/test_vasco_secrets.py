"""VASCO data blocks are secrets (contract 4.2): AES-GCM at rest under a key outside the
database, bound to their place, never logged; the service refuses to start without a key in
production."""

from __future__ import annotations

import base64
import logging
import os

import pytest
from sqlalchemy import text

from app.crypto import KeyConfigurationError
from app.extensions import db
from app.repositories.vasco import associated_data
from app.storage.sqlite.connection import QueuedWriterConnection
from tests.support import CORE, count_rows, create_vasco, fail_writing_the_blocks, make_app

VASCO_URL = f"{CORE}/acme/vasco"
MARKER = b"DIGIPASS-SECRET-MARKER"


def secret_blocks(*auth_modes: str) -> tuple[list[dict[str, str]], list[bytes]]:
    """Blocks whose plaintext holds a recognisable marker, and that plaintext."""
    plain = [MARKER + auth_mode.encode() + os.urandom(200) for auth_mode in auth_modes]
    sent = [
        {"authMode": auth_mode, "data": base64.b64encode(data).decode()}
        for auth_mode, data in zip(auth_modes, plain, strict=True)
    ]
    return sent, plain


def stored_blocks(app) -> list[tuple[str, str, str, str]]:
    """(client extId, credential extId, authMode, sealed_data) of every block, by raw SQL."""
    with app.app_context():
        return list(
            db.session.execute(
                text(
                    "SELECT k.ext_id AS client_ext_id, c.ext_id, b.auth_mode, b.sealed_data "
                    "FROM vasco_token_blocks b JOIN credentials c ON c.id = b.credential_id "
                    "JOIN clients k ON k.id = c.client_id "
                    "ORDER BY c.ext_id, b.position"
                )
            )
        )


def test_the_database_holds_only_ciphertext(client, admin, acme, app):
    sent, plain = secret_blocks("CR", "RO")
    assert create_vasco(client, admin, extId="token-1", vascoTokens=sent).status_code == 201

    rows = stored_blocks(app)
    assert [row.auth_mode for row in rows] == ["CR", "RO"]
    box = app.extensions["nevisidm.secret_box"]
    for row, token, data in zip(rows, sent, plain, strict=True):
        key_id, _, encoded = row.sealed_data.partition(":")
        assert key_id == box.key_id
        assert token["data"] not in row.sealed_data
        assert data not in base64.b64decode(encoded)
        assert MARKER not in base64.b64decode(encoded)
        # 12-byte nonce, the ciphertext, a 16-byte tag.
        assert len(base64.b64decode(encoded)) == 12 + len(data) + 16
        with app.app_context():
            place = associated_data(row.client_ext_id, row.ext_id, row.auth_mode)
            assert box.open(row.sealed_data, place) == data
    # Nor anywhere else in the database.
    with app.app_context():
        connection = db.session.connection()
        for table in db.metadata.sorted_tables:
            for stored in connection.execute(table.select()):
                dump = repr(tuple(stored))
                assert all(token["data"] not in dump for token in sent), table.name
                assert MARKER.decode() not in dump, table.name


def test_equal_blocks_never_give_equal_ciphertexts(client, admin, acme, app):
    same = base64.b64encode(MARKER).decode()
    create_vasco(client, admin, extId="a", vascoTokens=[{"authMode": "CR", "data": same}])
    create_vasco(client, admin, extId="b", vascoTokens=[{"authMode": "CR", "data": same}])
    sealed = [row.sealed_data for row in stored_blocks(app)]
    assert len(set(sealed)) == 2


def copy_block(source: tuple[str, str], target: tuple[str, str]) -> str:
    """SQL that overwrites the (extId, authMode) ``target`` block with the ``source`` one."""
    return (
        "UPDATE vasco_token_blocks SET sealed_data = ("
        " SELECT b.sealed_data FROM vasco_token_blocks b"
        " JOIN credentials c ON c.id = b.credential_id"
        f" WHERE c.ext_id = '{source[0]}' AND b.auth_mode = '{source[1]}')"
        f" WHERE credential_id = (SELECT id FROM credentials WHERE ext_id = '{target[0]}')"
        f" AND auth_mode = '{target[1]}'"
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [(("a", "CR"), ("b", "CR")), (("b", "RO"), ("b", "CR"))],
    ids=["to-another-credential", "to-another-auth-mode"],
)
def test_a_block_moved_from_its_place_does_not_open(client, admin, acme, app, source, target):
    create_vasco(client, admin, extId="a")
    create_vasco(client, admin, extId="b")
    with app.app_context():
        db.session.execute(text(copy_block(source, target)))
        db.session.commit()

    assert client.get(f"{VASCO_URL}/a", headers=admin).status_code == 200  # untouched
    response = client.get(f"{VASCO_URL}/b", headers=admin)
    assert response.status_code == 500
    assert response.json["errors"][0]["code"] == "errors.fatalError"
    assert "sealed" not in response.get_data(as_text=True)
    # The damaged credential can still be removed.
    assert client.delete(f"{VASCO_URL}/b", headers=admin).status_code == 204


def test_blocks_sealed_under_another_key_are_not_returned(client, admin, acme, database_url):
    create_vasco(client, admin, extId="token-1")
    other_key = base64.b64encode(os.urandom(32)).decode()
    other = make_app(database_url, CREDENTIAL_ENCRYPTION_KEY=other_key)

    response = other.test_client().get(f"{VASCO_URL}/token-1", headers=admin)
    with other.app_context():
        db.engine.dispose()

    assert response.status_code == 500
    assert response.json["errors"] == [
        {"code": "errors.fatalError", "message": "An unexpected error occurred; it has been logged"}
    ]


def test_blocks_never_reach_the_log_even_at_debug(client, admin, acme, app, caplog):
    caplog.set_level(logging.DEBUG)
    # Even with SQL logging on, statements, parameters and rows show no plaintext.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    sent, plain = secret_blocks("CR", "RO")
    replacement, replacement_plain = secret_blocks("SG")
    client.post(f"{CORE}/acme/users", json={"extId": "bob", "loginId": "bob"}, headers=admin)

    steps = [
        create_vasco(client, admin, extId="token-1", vascoTokens=sent),
        client.get(f"{VASCO_URL}/token-1", headers=admin),
        client.get(f"{VASCO_URL}?limit=1", headers=admin),
        client.patch(
            f"{VASCO_URL}/token-1", json={"version": 1, "vascoTokens": replacement}, headers=admin
        ),
        client.put(f"{CORE}/acme/users/alice/vasco/token-1", headers=admin),
        client.put(f"{CORE}/acme/users/bob/vasco/token-1", headers=admin),  # 422
        client.patch(
            f"{VASCO_URL}/token-1", json={"version": 1, "vascoTokens": sent}, headers=admin
        ),
        client.put(f"{VASCO_URL}/token-1/unassign", headers=admin),
        create_vasco(client, admin, extId="token-1", vascoTokens=sent),  # vascoExists
        client.post(  # a bad block next to a good one
            VASCO_URL,
            json={"vascoTokens": [sent[0], {"authMode": "RO", "data": sent[1]["data"] + "="}]},
            headers=admin,
        ),
        client.delete(f"{VASCO_URL}/token-1", headers=admin),
    ]

    assert [response.status_code for response in steps] == [
        201, 200, 200, 200, 200, 422, 409, 200, 422, 422, 204,
    ]  # fmt: skip
    assert "vasco_token_blocks" in caplog.text, "no SQL logged: the test would prove nothing"
    for token in sent + replacement:
        assert token["data"] not in caplog.text
        assert token["data"][:40] not in caplog.text
    for data in plain + replacement_plain:
        assert repr(data)[2:40] not in caplog.text
    assert MARKER.decode() not in caplog.text


def test_a_failed_create_logs_no_block(client, admin, acme, app, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    sent, _ = secret_blocks("CR", "RO")
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        # One statement that commits itself: the database fails it, and its error (with the
        # statement, which carries the blocks as parameters) is logged.
        undo = fail_writing_the_blocks(monkeypatch, app)
    else:

        def failing_commit(connection) -> None:
            raise RuntimeError("commit failed")

        # The create's INSERTs are written, and their transaction fails to commit.
        monkeypatch.setattr(QueuedWriterConnection, "commit", failing_commit)
        undo = monkeypatch.undo
    try:
        response = create_vasco(client, admin, vascoTokens=sent)
    finally:
        undo()

    assert response.status_code == 500
    assert count_rows(app, "credentials") == 0
    assert "unexpected error" in caplog.text  # the failure was logged ...
    if postgresql:
        assert "database failure in the middle of a create" in caplog.text
        assert "INSERT INTO vasco_token_blocks" in caplog.text  # with its statement ...
    assert all(token["data"] not in caplog.text for token in sent)  # ... without the blocks
    assert MARKER.decode() not in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"APP_ENV": "production", "CREDENTIAL_ENCRYPTION_KEY": None}, "must be set"),
        ({"APP_ENV": "production", "CREDENTIAL_ENCRYPTION_KEY": ""}, "must be set"),
        ({"APP_ENV": "production", "CREDENTIAL_ENCRYPTION_KEY": "not base64!"}, "not valid Base64"),
        (
            {
                "APP_ENV": "production",
                "CREDENTIAL_ENCRYPTION_KEY": base64.b64encode(b"k" * 16).decode(),
            },
            "32 bytes",
        ),
        ({"APP_ENV": "development", "CREDENTIAL_ENCRYPTION_KEY": "c2hvcnQ="}, "32 bytes"),
    ],
    ids=["production-without-key", "production-empty-key", "malformed", "aes-128-key", "dev-short"],
)
def test_service_refuses_to_start_without_a_usable_key(database_url, settings, message):
    with pytest.raises(KeyConfigurationError, match=message):
        make_app(database_url, **settings)


def test_production_starts_with_a_well_formed_key(database_url):
    key = base64.b64encode(os.urandom(32)).decode()
    app = make_app(database_url, APP_ENV="production", CREDENTIAL_ENCRYPTION_KEY=key)
    assert app.extensions["nevisidm.secret_box"].key_id
