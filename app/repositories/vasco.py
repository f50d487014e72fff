"""VASCO (OneSpan Digipass) credentials and their encrypted token blocks.

Each data block is sealed with AES-GCM (``app.crypto.SecretBox``) and bound to its place by
associated data: the client's extId, the credential's extId (neither ever changes) and the
block's authMode. A block copied to another credential, client or authMode does not open.
External ids rather than row ids, so that a dump restored into another database still opens.

Credentials leave this repository "revealed": ``vasco_tokens`` holds their decrypted blocks
(``VascoToken``), which is what the responses show. Nothing here logs a block.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam, func, insert, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import contains_eager, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ..crypto import secret_box
from ..domain import credentials as rules
from ..errors import ApiError, DuplicateValue, InvalidData, NoRecord, VascoExists
from ..models import (
    VASCO,
    VASCO_POLICY,
    Client,
    Credential,
    Policy,
    VascoCredential,
    VascoTokenBlock,
)
from ..models.types import utcnow
from ..storage import Prepared, insert_row
from .clients import ClientRepository
from .credentials import (
    CredentialRepository,
    committed_credential,
    credential_cte,
    insert_credential_row,
    new_credential_row,
)
from .pagination import Page, keyset_page
from .policies import PolicyRepository
from .users import UserRepository


@dataclass(frozen=True)
class VascoToken:
    """One decrypted Digipass data block. ``repr`` leaves the secret out."""

    auth_mode: str
    data: bytes = field(repr=False)


# How json.dumps (ensure_ascii) writes a string.
_json_string = json.encoder.encode_basestring_ascii


def associated_data(client_ext_id: str, credential_ext_id: str, auth_mode: str) -> bytes:
    """What a sealed block is bound to. JSON keeps the parts unambiguous: the text of
    ``json.dumps(["vasco-token-block", client_ext_id, credential_ext_id, auth_mode])``, each
    string encoded as ``json.dumps`` encodes it, without its generic steps."""
    parts = (client_ext_id, credential_ext_id, auth_mode)
    return ('["vasco-token-block", ' + ", ".join(map(_json_string, parts)) + "]").encode()


def _sealed_block_rows(
    client_ext_id: str, credential_ext_id: str, tokens: list[VascoToken]
) -> list[dict[str, Any]]:
    """The rows of a new credential's blocks, sealed, in the order given."""
    box = secret_box()
    return [
        {
            "position": position,
            "auth_mode": token.auth_mode,
            "sealed_data": box.seal(
                token.data, associated_data(client_ext_id, credential_ext_id, token.auth_mode)
            ),
        }
        for position, token in enumerate(tokens)
    ]


# The blocks' columns, each passed as one array (``_credential_and_blocks``).
_BLOCK_ARRAYS = ("position", "auth_mode", "sealed_data")


@cache
def _insert_credential_and_blocks(credential_columns: tuple[str, ...]) -> Prepared:
    """The credential's row and all its blocks in one statement, for PostgreSQL (a
    data-modifying WITH, which SQLite lacks): one round trip, atomic by itself, instead of a
    transaction of three. Returns the new id, once per block."""
    return Prepared(lambda: _credential_and_blocks(credential_columns))


def _credential_and_blocks(credential_columns: tuple[str, ...]) -> Insert:
    blocks = VascoTokenBlock.__table__
    credential = credential_cte(credential_columns)
    # unnest(positions, auth_modes, sealed_data): one row per block.
    block = (
        func.unnest(*(bindparam(name, type_=ARRAY(blocks.c[name].type)) for name in _BLOCK_ARRAYS))
        .table_valued(*_BLOCK_ARRAYS)
        .render_derived(name="block")
    )
    block_values = select(credential.c.id, *(block.c[name] for name in _BLOCK_ARRAYS)).join_from(
        credential, block, true()
    )
    return (
        insert(blocks)
        .from_select(["credential_id", *_BLOCK_ARRAYS], block_values)
        .returning(blocks.c.credential_id)
    )


class VascoRepository(CredentialRepository):
    policy_type = VASCO_POLICY

    def create(
        self,
        client: Client,
        vasco_tokens: list[dict[str, Any]],
        ext_id: str | None = None,
        policy_ext_id: str | None = None,
        state_name: str = "initial",
    ) -> VascoCredential:
        """An unassigned VASCO credential with its sealed blocks, written all or nothing.

        ``vasco_tokens`` holds ``{"auth_mode": str, "data": bytes}`` items, already
        validated (1 to 16, authModes unique case-insensitively).

        Written at the level of its statements: the policy's terms (one row), then the
        credential's row and every block, not through the unit of work: on PostgreSQL in
        one statement, on SQLite as an INSERT and an executemany.
        The credential returned is the committed row, detached from the session, with its
        client and policy attached and its blocks revealed on ``vasco_tokens``.
        """
        client_id, client_ext_id = client.id, client.ext_id
        policy = PolicyRepository().terms_for_new_credential(client, policy_ext_id, VASCO_POLICY)
        tokens = [VascoToken(token["auth_mode"], token["data"]) for token in vasco_tokens]
        now = utcnow()
        credential_row = new_credential_row(
            kind=VASCO,
            ext_id=ext_id,
            client_id=client_id,
            user_id=None,
            policy=policy,
            state_name=state_name,
            now=now,
        )
        block_rows = _sealed_block_rows(client_ext_id, credential_row["ext_id"], tokens)
        work = self.work
        postgresql = work.dialect.name == "postgresql"

        def write() -> int:
            if postgresql:
                arrays = {name: [row[name] for row in block_rows] for name in _BLOCK_ARRAYS}
                statement = _insert_credential_and_blocks(tuple(credential_row))
                [(credential_id,), *_] = statement.all(work, {**credential_row, **arrays})
                return credential_id
            credential_id = insert_credential_row(work, credential_row)
            insert_row(VascoTokenBlock.__table__, ("credential_id", *block_rows[0])).execute_many(
                work, [{"credential_id": credential_id, **block} for block in block_rows]
            )
            return credential_id

        credential_id = self.write(
            write,
            lambda: self._explain_conflict(
                client_id, client_ext_id, credential_row["ext_id"], policy
            ),
            single_statement=postgresql,
        )
        credential = committed_credential(
            VascoCredential,
            {"id": credential_id, **credential_row},
            client=client,
            user=None,
            policy=policy,
        )
        credential.vasco_tokens = tokens
        return credential

    def get(self, client_ext_id: str, ext_id: str) -> VascoCredential:
        """The client's VASCO credential, revealed; NoRecord names what is missing."""
        return self.reveal(self._find(client_ext_id, ext_id))

    def page(
        self, client: Client, limit: int, token: str | None, total_result: bool = False
    ) -> Page:
        """One page of the client's VASCO credentials, revealed, in (created, extId) order."""
        statement = self._select().where(Credential.client_id == client.id)
        page = keyset_page(self.session, statement, VascoCredential, limit, token, total_result)
        for credential in page.items:
            set_committed_value(credential, "client", client)
            self.reveal(credential)
        return page

    def update(self, credential: VascoCredential, changes: dict[str, Any]) -> VascoCredential:
        """Apply a parsed PATCH body to ``credential`` (as ``get`` read it);
        ``vasco_tokens``, when given, replaces every block. A credential changed since it
        was read is 409: ``version`` is the caller's, and the UPDATE checks it too."""
        changes = dict(changes)
        expected_version = changes.pop("version", None)
        with self.saving(credential.ext_id):
            self.check_version(credential, expected_version)
            self.apply_common_changes(credential, changes)
            if "vasco_tokens" in changes:
                tokens = [
                    VascoToken(token["auth_mode"], token["data"])
                    for token in changes["vasco_tokens"]
                ]
                credential.token_blocks = self._seal(
                    credential.client.ext_id, credential.ext_id, tokens, credential.token_blocks
                )
                credential.vasco_tokens = tokens
            self.touch(credential)
        return credential

    def assign(self, client_ext_id: str, user_ext_id: str, ext_id: str) -> VascoCredential:
        """Give the credential to the user; its state stays as it is. NoRecord names what
        is missing: the client, the user, or the credential.

        Assigning it to its own user again changes nothing. A credential held by another user
        must be unassigned first: a hardware token never moves between people silently.
        """
        user = UserRepository().get(client_ext_id, user_ext_id)
        credential = self.get(client_ext_id, ext_id)
        if credential.user_id == user.id:
            return credential
        if credential.user is not None:
            raise InvalidData(
                f"VASCO credential '{credential.ext_id}' is assigned to user "
                f"'{credential.user.ext_id}'; unassign it first"
            )
        with self.saving(ext_id):
            # The user was read without joining the session: the credential takes its id,
            # and shows it without attaching it.
            credential.user_id = user.id
            set_committed_value(credential, "user", user)
            self.touch(credential)
        return credential

    def unassign(self, client_ext_id: str, ext_id: str) -> VascoCredential:
        """Take the credential from its user and return it to ``initial``."""
        credential = self.get(client_ext_id, ext_id)
        with self.saving(ext_id):
            if rules.unassign(credential):
                credential.user = None
                self.touch(credential)
        return credential

    def delete(self, client_ext_id: str, ext_id: str) -> None:
        """Delete the credential and its blocks (unopened: a block that no longer opens can
        still be deleted)."""
        credential = self._find(client_ext_id, ext_id)
        with self.saving(ext_id) as session:
            session.delete(credential)

    def _find(self, client_ext_id: str, ext_id: str) -> VascoCredential:
        credential = self.session.scalars(
            self._select()
            .join(Credential.client)
            .options(contains_eager(Credential.client))
            .where(Client.ext_id == client_ext_id, Credential.ext_id == ext_id)
        ).one_or_none()
        if credential is None:
            ClientRepository().get(client_ext_id)
            raise NoRecord(f"No VASCO credential '{ext_id}' in client '{client_ext_id}'")
        return credential

    def reveal(self, credential: VascoCredential) -> VascoCredential:
        """Decrypt the credential's blocks into ``vasco_tokens``."""
        box = secret_box()
        credential.vasco_tokens = [
            VascoToken(
                block.auth_mode,
                box.open(
                    block.sealed_data,
                    associated_data(credential.client.ext_id, credential.ext_id, block.auth_mode),
                ),
            )
            for block in credential.token_blocks
        ]
        return credential

    def _select(self):
        return select(VascoCredential).options(
            joinedload(Credential.user), joinedload(Credential.policy)
        )

    @staticmethod
    def _seal(
        client_ext_id: str,
        credential_ext_id: str,
        tokens: Iterable[VascoToken],
        existing: Iterable[VascoTokenBlock],
    ) -> list[VascoTokenBlock]:
        """Sealed blocks for ``tokens``, in their order.

        A block whose authMode (compared case-insensitively) already exists is rewritten in
        place: the unit of work inserts before it deletes, so replacing it with a new row
        would trip the (credential, authMode) unique constraint.
        """
        box = secret_box()
        reusable = {block.auth_mode.lower(): block for block in existing}
        blocks = []
        for position, token in enumerate(tokens):
            block = reusable.pop(token.auth_mode.lower(), None) or VascoTokenBlock()
            block.position = position
            block.auth_mode = token.auth_mode
            block.sealed_data = box.seal(
                token.data, associated_data(client_ext_id, credential_ext_id, token.auth_mode)
            )
            blocks.append(block)
        return blocks

    def _explain_conflict(
        self, client_id: int, client_ext_id: str, ext_id: str, policy: Policy
    ) -> ApiError:
        """Which rule the create broke: a taken extId, or (the client or the policy deleted
        while it ran) a row it refers to that is gone."""
        holder_kind = self.session.scalar(
            select(Credential.kind).where(
                Credential.client_id == client_id, Credential.ext_id == ext_id
            )
        )
        if holder_kind == VASCO:
            return VascoExists(
                f"A VASCO credential with extId '{ext_id}' already exists in client "
                f"'{client_ext_id}'",
                field="extId",
            )
        if holder_kind is not None:
            return DuplicateValue(
                f"A credential with extId '{ext_id}' already exists in client '{client_ext_id}'",
                field="extId",
            )
        if self.session.get(Client, client_id) is None:
            return NoRecord(f"No client '{client_ext_id}'")
        return NoRecord(f"No policy '{policy.ext_id}' in client '{client_ext_id}'")
