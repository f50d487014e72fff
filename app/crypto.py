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
from collections.abc import Iterable
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


CURRENT_KEY_SETTING = "CREDENTIAL_ENCRYPTION_KEY"
OLD_KEYS_SETTING = "CREDENTIAL_ENCRYPTION_OLD_KEYS"
KEY_ID_LENGTH = 8  # hex digits


def decode_key(encoded: str, setting: str = CURRENT_KEY_SETTING) -> bytes:
    """The 32 bytes of a Base64 key; ``setting`` names where it came from in the error.

    The messages never repeat the value: it is key material.
    """
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyConfigurationError(
            f"{setting} is not valid Base64; generate a key with "
            "`python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())'`"
        ) from error
    if len(key) != 32:
        raise KeyConfigurationError(f"{setting} must decode to 32 bytes (AES-256), not {len(key)}")
    return key


def decode_old_keys(encoded: str | Iterable[str] | None) -> list[bytes]:
    """The keys of ``CREDENTIAL_ENCRYPTION_OLD_KEYS``: Base64 keys separated by commas.

    Blank entries (a trailing comma) are ignored. A malformed entry stops start-up with an
    error that says which entry (by position) is wrong, never what it holds.
    """
    if not encoded:
        return []
    entries = encoded.split(",") if isinstance(encoded, str) else list(encoded)
    keys = []
    for position, entry in enumerate(entries, start=1):
        if entry.strip():
            keys.append(decode_key(entry, f"{OLD_KEYS_SETTING} entry {position}"))
    return keys


def key_id_of(key: bytes) -> str:
    """The id a key's ciphertexts carry: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:KEY_ID_LENGTH]


def load_or_create_key_file(path: Path) -> bytes:
    """Development only: a generated key kept in the instance folder.

    Several workers may start at once: the file is created exclusively, and whoever loses
    the race reads the winner's key.
    """
    # The folder and the key are their owner's alone.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    rotated: the box seals under its current ``key`` only, and opens what any of its keys
    (the current one and ``old_keys``) sealed. ``associated_data`` binds a ciphertext to its
    place (it cannot be moved to another row and still open).
    """

    NONCE_BYTES = 12
    KEY_ID_LENGTH = KEY_ID_LENGTH

    def __init__(self, key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        self.key_id = key_id_of(key)
        keys = {self.key_id: key}
        for old_key in old_keys:
            old_id = key_id_of(old_key)
            known = keys.setdefault(old_id, old_key)
            # Listing a key twice (or the current key among the old ones) is harmless; two
            # different keys with one id (a 1 in 2**32 chance) would make ciphertexts ambiguous.
            if not hmac.compare_digest(known, old_key):
                raise KeyConfigurationError(
                    f"two different configured keys share the key id {old_id}: "
                    "generate another new key"
                )
        self._ciphers = {key_id: AESGCM(each) for key_id, each in keys.items()}

    @property
    def old_key_ids(self) -> list[str]:
        """The ids of the keys this box opens with but no longer seals with."""
        return [key_id for key_id in self._ciphers if key_id != self.key_id]

    @staticmethod
    def key_id_of_sealed(sealed: str) -> str:
        """The id of the key that sealed ``sealed``."""
        return sealed.partition(":")[0]

    def seal(self, plaintext: bytes, associated_data: bytes) -> str:
        nonce = os.urandom(self.NONCE_BYTES)
        ciphertext = self._ciphers[self.key_id].encrypt(nonce, plaintext, associated_data)
        return f"{self.key_id}:" + base64.b64encode(nonce + ciphertext).decode()

    def open(self, sealed: str, associated_data: bytes) -> bytes:
        key_id, _, encoded = sealed.partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyConfigurationError(
                f"a stored secret was sealed with key {key_id}, which is neither the current "
                f"key {self.key_id} ({CURRENT_KEY_SETTING}) nor one of {OLD_KEYS_SETTING} "
                f"({', '.join(self.old_key_ids) or 'none configured'})"
            )
        raw = base64.b64decode(encoded)
        nonce, ciphertext = raw[: self.NONCE_BYTES], raw[self.NONCE_BYTES :]
        try:
            return cipher.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag as error:
            raise KeyConfigurationError(
                "a stored secret failed its integrity check (wrong key or tampered row)"
            ) from error

    def reseal(self, sealed: str, associated_data: bytes) -> str:
        """``sealed`` opened with whichever key sealed it and sealed again under the current
        key (with a new nonce), for the same place."""
        return self.seal(self.open(sealed, associated_data), associated_data)


def secret_box() -> SecretBox:
    """The app's box for credential secrets (built by ``create_app`` from the configured key)."""
    return current_app.extensions["nevisidm.secret_box"]
