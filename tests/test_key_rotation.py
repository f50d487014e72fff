"""Rotating CREDENTIAL_ENCRYPTION_KEY: old keys open what they sealed, ``credential-key
rotate`` seals every stored secret again under the current key, ``credential-key status``
says when an old key can go."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import text

from app.config import TestConfig
from app.crypto import KeyConfigurationError, SecretBox, key_id_of
from app.extensions import db
from app.repositories.secrets import SealedSecretRepository
from app.repositories.vasco import associated_data
from tests.support import CORE, create_vasco, make_app, tokens

VASCO_URL = f"{CORE}/acme/vasco"
KEY_A = TestConfig.CREDENTIAL_ENCRYPTION_KEY  # what the ``app`` fixture seals with
ID_A = key_id_of(base64.b64decode(KEY_A))


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def key_b() -> str:
    return new_key()


@pytest.fixture
def app_with(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Build apps over the test database with ``key`` current and ``old_keys`` as old keys."""
    built: list[Flask] = []

    def make(key: str, *old_keys: str) -> Flask:
        app = make_app(
            database_url,
            CREDENTIAL_ENCRYPTION_KEY=key,
            CREDENTIAL_ENCRYPTION_OLD_KEYS=",".join(old_keys) or None,
        )
        built.append(app)
        return app

    yield make
    for app in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def vascos(client, admin, acme) -> dict[str, list[dict[str, str]]]:
    """Three VASCO credentials of two blocks each, sealed under key A: extId -> blocks."""
    created = {}
    for ext_id in ("token-1", "token-2", "token-3"):
        sent = tokens("CR", "RO")
        assert create_vasco(client, admin, extId=ext_id, vascoTokens=sent).status_code == 201
        created[ext_id] = sent
    return created


def key_ids(app: Flask) -> Counter[str]:
    """How many blocks each key id sealed, read with raw SQL."""
    with app.app_context():
        sealed = db.session.scalars(text("SELECT sealed_data FROM vasco_token_blocks"))
        return Counter(value.partition(":")[0] for value in sealed)


def assert_readable(app: Flask, admin, vascos) -> None:
    api = app.test_client()
    for ext_id, sent in vascos.items():
        response = api.get(f"{VASCO_URL}/{ext_id}", headers=admin)
        assert response.status_code == 200, response.json
        assert response.json["vascoTokens"] == sent


def run(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=["credential-key", *args])


def test_secrets_sealed_under_an_old_key_stay_readable(app_with, key_b, admin, vascos):
    switched = app_with(key_b, KEY_A)

    assert_readable(switched, admin, vascos)
    # New secrets are sealed under the new key only.
    sent = tokens("SG")
    response = switched.test_client().patch(
        f"{VASCO_URL}/token-1", json={"version": 1, "vascoTokens": sent}, headers=admin
    )
    assert response.status_code == 200, response.json
    box_b = switched.extensions["nevisidm.secret_box"]
    assert key_ids(switched) == {ID_A: 4, box_b.key_id: 1}
    assert_readable(switched, admin, {**vascos, "token-1": sent})


def test_without_the_old_key_secrets_are_a_fatal_error(app_with, key_b, admin, vascos):
    response = app_with(key_b).test_client().get(f"{VASCO_URL}/token-1", headers=admin)

    assert response.status_code == 500
    assert response.json["errors"] == [
        {"code": "errors.fatalError", "message": "An unexpected error occurred; it has been logged"}
    ]
    assert ID_A not in response.get_data(as_text=True)


def test_rotate_reseals_everything_and_then_the_old_key_can_go(
    app_with, key_b, admin, vascos, caplog
):
    switched = app_with(key_b, KEY_A)
    id_b = switched.extensions["nevisidm.secret_box"].key_id
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")

    result = run(switched, "rotate", "--batch-size", "4")

    assert result.exit_code == 0, result.output
    assert "vasco_token_blocks" in caplog.text, "no SQL logged: the check below proves nothing"
    for sent in vascos.values():
        for token in sent:
            assert token["data"][:40] not in caplog.text + result.output
            assert repr(base64.b64decode(token["data"]))[2:40] not in caplog.text
    assert result.stdout.strip().splitlines()[-1] == "Re-sealed 6, skipped 0, unreadable 0."
    assert f"Re-sealing 6 secrets under key {id_b}" in result.output  # the progress bar
    assert key_ids(switched) == {id_b: 6}
    assert_readable(app_with(key_b), admin, vascos)
    # Nothing is left to do.
    again = run(switched, "rotate")
    assert again.stdout.strip().splitlines()[-1] == "Re-sealed 0, skipped 0, unreadable 0."


def test_an_interrupted_rotation_is_consistent_and_a_rerun_finishes(
    app_with, key_b, admin, vascos, monkeypatch
):
    switched = app_with(key_b, KEY_A)
    id_b = switched.extensions["nevisidm.secret_box"].key_id
    replace = SealedSecretRepository.replace_sealed_data
    calls = []

    def fail_in_the_second_batch(self, block_id, old, new):
        calls.append(block_id)
        if len(calls) == 4:  # the second block of the second batch, the first one written
            raise RuntimeError("connection lost")
        return replace(self, block_id, old, new)

    monkeypatch.setattr(SealedSecretRepository, "replace_sealed_data", fail_in_the_second_batch)
    interrupted = run(switched, "rotate", "--batch-size", "2")

    assert interrupted.exit_code != 0
    assert isinstance(interrupted.exception, RuntimeError)
    assert "run the command again" in interrupted.output.lower()
    # The first batch is committed, the second rolled back whole; everything still opens.
    assert key_ids(switched) == {id_b: 2, ID_A: 4}
    assert_readable(switched, admin, vascos)

    monkeypatch.setattr(SealedSecretRepository, "replace_sealed_data", replace)
    rerun = run(switched, "rotate", "--batch-size", "2")

    assert rerun.exit_code == 0, rerun.output
    assert rerun.stdout.strip().splitlines()[-1] == "Re-sealed 4, skipped 0, unreadable 0."
    assert key_ids(switched) == {id_b: 6}
    assert_readable(app_with(key_b), admin, vascos)


def test_a_block_rewritten_during_rotation_keeps_the_new_value(
    app_with, key_b, admin, vascos, monkeypatch
):
    switched = app_with(key_b, KEY_A)
    box_b: SecretBox = switched.extensions["nevisidm.secret_box"]
    newer = tokens("CR")[0]["data"]
    read = SealedSecretRepository.blocks_to_reseal

    def a_request_writes_after_the_read(self, key_id, after_id, limit):
        rows = read(self, key_id, after_id, limit)
        if after_id == 0:
            # What a PATCH committed between this read and the re-sealing UPDATE.
            place = associated_data("acme", "token-1", "CR")
            self.session.execute(
                text(
                    "UPDATE vasco_token_blocks SET sealed_data = :sealed WHERE credential_id ="
                    " (SELECT id FROM credentials WHERE ext_id = 'token-1') AND auth_mode = 'CR'"
                ),
                {"sealed": box_b.seal(base64.b64decode(newer), place)},
            )
        return rows

    monkeypatch.setattr(SealedSecretRepository, "blocks_to_reseal", a_request_writes_after_the_read)
    result = run(switched, "rotate")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "Re-sealed 5, skipped 1, unreadable 0."
    assert key_ids(switched) == {box_b.key_id: 6}
    token_1 = [{"authMode": "CR", "data": newer}, vascos["token-1"][1]]
    assert_readable(app_with(key_b), admin, {**vascos, "token-1": token_1})


def test_rotate_leaves_and_reports_secrets_no_configured_key_opens(
    app_with, key_b, app, admin, vascos
):
    # One block is moved to another credential: it fails its integrity check.
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE vasco_token_blocks SET sealed_data = (SELECT sealed_data FROM"
                " vasco_token_blocks WHERE id = (SELECT min(id) FROM vasco_token_blocks))"
                " WHERE id = (SELECT max(id) FROM vasco_token_blocks)"
            )
        )
        db.session.commit()
        damaged = db.session.scalar(text("SELECT max(id) FROM vasco_token_blocks"))

    result = run(app_with(key_b), "rotate")  # key A is not configured
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == "Re-sealed 0, skipped 0, unreadable 6."
    assert f"6 sealed under key {ID_A}, which is not configured" in result.output
    assert key_ids(app) == {ID_A: 6}  # left as they were

    switched = app_with(key_b, KEY_A)
    result = run(switched, "rotate")
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == "Re-sealed 5, skipped 0, unreadable 1."
    assert "1 failed their integrity check" in result.output
    assert f"vasco_token_blocks ids {damaged})" in result.output
    assert_readable(switched, admin, {"token-1": vascos["token-1"], "token-2": vascos["token-2"]})


def test_status_counts_secrets_per_key(app_with, key_b, vascos):
    switched = app_with(key_b, KEY_A)
    id_b = switched.extensions["nevisidm.secret_box"].key_id

    before = run(switched, "status")
    assert before.exit_code == 0, before.output
    lines = before.stdout.splitlines()
    assert lines[1].split() == [id_b, "0", "current", "(CREDENTIAL_ENCRYPTION_KEY)"]
    assert lines[2].split() == [ID_A, "6", "old", "(CREDENTIAL_ENCRYPTION_OLD_KEYS)"]
    assert "credential-key rotate" in lines[-1]

    run(switched, "rotate")
    after = run(switched, "status").stdout.splitlines()
    assert after[1].split()[:2] == [id_b, "6"]
    assert after[2].split()[:2] == [ID_A, "0"]
    assert "the old keys can be removed" in after[-1]

    # An app that knows neither key sees both as not configured.
    stranger = run(app_with(new_key()), "status").stdout.splitlines()
    assert [line.split()[:2] for line in stranger[2:-1]] == [[id_b, "6"]]
    assert "not configured" in stranger[2]


def test_status_and_rotate_with_no_secrets_stored(app_with, key_b, app):
    switched = app_with(key_b, KEY_A)
    assert run(switched, "rotate").stdout.strip() == "Re-sealed 0, skipped 0, unreadable 0."
    assert "the old keys can be removed" in run(switched, "status").stdout


def test_batch_size_must_be_positive(app):
    result = run(app, "rotate", "--batch-size", "0")
    assert result.exit_code == 2
    assert "--batch-size" in result.output


@pytest.mark.parametrize(
    ("old_keys", "message"),
    [
        ("not base64!", "CREDENTIAL_ENCRYPTION_OLD_KEYS entry 1 is not valid Base64"),
        (f"{KEY_A},c2hvcnQ=", "CREDENTIAL_ENCRYPTION_OLD_KEYS entry 2 must decode to 32 bytes"),
        (f"{KEY_A}, ,{KEY_A[:-2]}", "CREDENTIAL_ENCRYPTION_OLD_KEYS entry 3 is not valid Base64"),
    ],
    ids=["not-base64", "short-key", "truncated-third"],
)
def test_malformed_old_keys_stop_start_up(database_url, key_b, old_keys, message):
    with pytest.raises(KeyConfigurationError, match=message) as error:
        make_app(
            database_url, CREDENTIAL_ENCRYPTION_KEY=key_b, CREDENTIAL_ENCRYPTION_OLD_KEYS=old_keys
        )
    for entry in old_keys.split(","):
        if entry.strip():
            assert entry.strip() not in str(error.value)
            assert entry.strip() not in repr(error.value.__cause__)


def test_blank_old_key_entries_and_the_current_key_among_them_are_ignored(app_with, key_b):
    box = app_with(key_b, f" {KEY_A} ", "", key_b).extensions["nevisidm.secret_box"]
    assert box.old_key_ids == [ID_A]


def test_a_box_built_with_one_key_works_as_before():
    key_a, key_b = os.urandom(32), os.urandom(32)
    place = associated_data("acme", "token-1", "CR")
    sealed_a = SecretBox(key_a).seal(b"block", place)
    rotating = SecretBox(key_b, [key_a])

    assert rotating.key_id == key_id_of(key_b) and rotating.old_key_ids == [key_id_of(key_a)]
    assert rotating.open(sealed_a, place) == b"block"
    assert rotating.seal(b"block", place).startswith(f"{key_id_of(key_b)}:")
    assert rotating.reseal(sealed_a, place).startswith(f"{key_id_of(key_b)}:")
    with pytest.raises(KeyConfigurationError, match=f"sealed with key {key_id_of(key_b)}"):
        SecretBox(key_a).open(rotating.seal(b"block", place), place)


@pytest.mark.parametrize(
    "parts", [("acme", "token-1", "CR"), ('q"u\\o', "ü日本\U0001f600", "\x00\n\ud800")]
)
def test_associated_data_is_the_json_text_of_its_parts(parts):
    # What sealed blocks are bound to must not change: blocks sealed before would not open.
    assert associated_data(*parts) == json.dumps(["vasco-token-block", *parts]).encode()
