"""Secrets: ticket values and their salted hashes, api keys, and the AES-GCM box.

Nothing here logs; callers must not log what goes in or comes out either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

SALT_BYTES = 16
# Prefix -> digest, per the contract: {SSHA256} is the default, {SSHA} is SHA-1.
HASH_ALGORITHMS = {"SSHA256": hashlib.sha256, "SSHA": hashlib.sha1}
API_KEY_PREFIX = "nidm_"


def new_ticket_value() -> str:
    """A fresh ticket: 256 bits from the OS CSPRNG, URL-safe Base64 without padding."""
    return secrets.token_urlsafe(32)


def hash_ticket(value: str, algorithm: str = "SSHA256") -> str:
    """``{ALG}`` + Base64(digest(value || salt) || salt), with a new 16-byte salt."""
    salt = os.urandom(SALT_BYTES)
    digest = HASH_ALGORITHMS[algorithm](value.encode() + salt).digest()
    return f"{{{algorithm}}}" + base64.b64encode(digest + salt).decode()


def ticket_matches(value: str, stored_hash: str) -> bool:
    """Constant-time check of a presented ticket against its stored salted hash."""
    algorithm, _, encoded = stored_hash.removeprefix("{").partition("}")
    digest_of = HASH_ALGORITHMS.get(algorithm)
    if digest_of is None:
        return False
    raw = base64.b64decode(encoded)
    size = digest_of().digest_size
    expected, salt = raw[:size], raw[size:]
    return hmac.compare_digest(digest_of(value.encode() + salt).digest(), expected)


def new_api_key() -> str:
    """A new api key: high-entropy, prefixed so that secret scanners recognise it."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Api keys are high-entropy, so a fast digest is enough to store them."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyConfigurationError(RuntimeError):
    """The encryption key is missing or malformed: the service refuses to start."""


def decode_key(encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyConfigurationError(
            "CREDENTIAL_ENCRYPTION_KEY is not valid Base64; generate one with "
            "`python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())'`"
        ) from error
    if len(key) != 32:
        raise KeyConfigurationError(
            f"CREDENTIAL_ENCRYPTION_KEY must decode to 32 bytes (AES-256), not {len(key)}"
        )
    return key


def load_or_create_key_file(path: Path) -> bytes:
    """Development only: a generated key kept in the instance folder.

    Several workers may start at once: the file is created exclusively, and whoever loses
    the race reads the winner's key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_key(path.read_text())
    with os.fdopen(fd, "w") as key_file:
        key_file.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    return decode_key(path.read_text())


class SecretBox:
    """AES-256-GCM with a random 96-bit nonce per message.

    A sealed value is ``<key id>:<Base64(nonce || ciphertext || tag)>``; the key id (the
    first 8 hex digits of the key's SHA-256) says which key sealed it, so that keys can be
    rotated. ``associated_data`` binds a ciphertext to its place (it cannot be moved to
    another row and still open).
    """

    NONCE_BYTES = 12

    def __init__(self, key: bytes) -> None:
        self._cipher = AESGCM(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:8]

    def seal(self, plaintext: bytes, associated_data: bytes) -> str:
        nonce = os.urandom(self.NONCE_BYTES)
        ciphertext = self._cipher.encrypt(nonce, plaintext, associated_data)
        return f"{self.key_id}:" + base64.b64encode(nonce + ciphertext).decode()

    def open(self, sealed: str, associated_data: bytes) -> bytes:
        key_id, _, encoded = sealed.partition(":")
        if key_id != self.key_id:
            raise KeyConfigurationError(
                f"a stored secret was sealed with key {key_id}, not the configured key "
                f"{self.key_id}: check CREDENTIAL_ENCRYPTION_KEY"
            )
        raw = base64.b64decode(encoded)
        nonce, ciphertext = raw[: self.NONCE_BYTES], raw[self.NONCE_BYTES :]
        try:
            return self._cipher.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag as error:
            raise KeyConfigurationError(
                "a stored secret failed its integrity check (wrong key or tampered row)"
            ) from error


def secret_box() -> SecretBox:
    """The app's box for credential secrets (built by ``create_app`` from the configured key)."""
    return current_app.extensions["nevisidm.secret_box"]
