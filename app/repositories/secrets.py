"""Secrets sealed at rest, all together: which key sealed them, and sealing them again
under the current key (``flask --app wsgi credential-key ...``).

Today the only such secrets are VASCO data blocks (``VascoTokenBlock.sealed_data``); a new
kind of sealed column belongs here too, so that a rotation covers it.

Re-sealing never loses a concurrent write: each block is rewritten only if it still holds the
ciphertext that was read (``UPDATE ... WHERE id = :id AND sealed_data = :old``), so a block
that a request rewrote or deleted in the meantime is skipped, and the request's value stays.
Nothing here logs a block or its plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Row, func, select, update

from ..crypto import KEY_ID_LENGTH, KeyConfigurationError, SecretBox
from ..models import Client, Credential, VascoTokenBlock
from .base import Repository
from .vasco import associated_data


@dataclass(frozen=True)
class UnreadableSecret:
    """A stored secret that none of the configured keys opens, and why (no secret in it)."""

    block_id: int
    key_id: str
    key_configured: bool


@dataclass
class ResealBatch:
    """What one batch did. ``last_id`` is the keyset position to continue after; None when
    there was nothing left to look at."""

    last_id: int | None = None
    resealed: int = 0
    skipped: int = 0
    unreadable: list[UnreadableSecret] = field(default_factory=list)

    @property
    def looked_at(self) -> int:
        return self.resealed + self.skipped + len(self.unreadable)


def _key_id_column():
    return func.substr(VascoTokenBlock.sealed_data, 1, KEY_ID_LENGTH)


def _not_sealed_under(key_id: str):
    # The exact "<key id>:" prefix (LIKE would be case-insensitive on SQLite).
    return func.substr(VascoTokenBlock.sealed_data, 1, KEY_ID_LENGTH + 1) != f"{key_id}:"


class SealedSecretRepository(Repository):
    """Counting and re-sealing the stored secrets, batch by batch."""

    def count_by_key_id(self) -> dict[str, int]:
        """How many secrets each key id sealed, in a read transaction of its own."""
        key_ids = select(_key_id_column().label("key_id")).subquery()
        statement = select(key_ids.c.key_id, func.count()).group_by(key_ids.c.key_id)
        counts = {key_id: count for key_id, count in self.session.execute(statement)}
        self.session.commit()
        return counts

    def count_not_sealed_under(self, key_id: str) -> int:
        """How many secrets another key than ``key_id`` sealed, in a transaction of its own."""
        statement = (
            select(func.count()).select_from(VascoTokenBlock).where(_not_sealed_under(key_id))
        )
        count = self.session.scalar(statement)
        self.session.commit()
        return count

    def blocks_to_reseal(self, key_id: str, after_id: int, limit: int) -> list[Row]:
        """The next ``limit`` blocks with an id above ``after_id`` not sealed under ``key_id``,
        with what their associated data is made of. Keyset over the block id, never OFFSET."""
        statement = (
            select(
                VascoTokenBlock.id,
                VascoTokenBlock.auth_mode,
                VascoTokenBlock.sealed_data,
                Credential.ext_id.label("credential_ext_id"),
                Client.ext_id.label("client_ext_id"),
            )
            .join(Credential, Credential.id == VascoTokenBlock.credential_id)
            .join(Client, Client.id == Credential.client_id)
            .where(VascoTokenBlock.id > after_id, _not_sealed_under(key_id))
            .order_by(VascoTokenBlock.id)
            .limit(limit)
        )
        return list(self.session.execute(statement))

    def replace_sealed_data(self, block_id: int, old: str, new: str) -> bool:
        """Write ``new`` into the block if it still holds ``old``; False when a concurrent
        write changed (or deleted) it first."""
        statement = (
            update(VascoTokenBlock)
            .where(VascoTokenBlock.id == block_id, VascoTokenBlock.sealed_data == old)
            .values(sealed_data=new)
            .execution_options(synchronize_session=False)
        )
        return self.session.execute(statement).rowcount == 1

    def reseal_batch(self, box: SecretBox, after_id: int, limit: int) -> ResealBatch:
        """Seal the next ``limit`` blocks after ``after_id`` again under the box's current key,
        in one transaction: an interruption rolls the batch back, and the batches before it
        stay committed. A block no configured key opens is left as it is and reported."""
        batch = ResealBatch()
        with self.changing():
            rows = self.blocks_to_reseal(box.key_id, after_id, limit)
            for row in rows:
                place = associated_data(row.client_ext_id, row.credential_ext_id, row.auth_mode)
                try:
                    resealed = box.reseal(row.sealed_data, place)
                except (KeyConfigurationError, ValueError):
                    key_id = box.key_id_of_sealed(row.sealed_data)
                    batch.unreadable.append(
                        UnreadableSecret(row.id, key_id, key_id in box.old_key_ids)
                    )
                    continue
                if self.replace_sealed_data(row.id, row.sealed_data, resealed):
                    batch.resealed += 1
                else:
                    batch.skipped += 1
        if rows:
            batch.last_id = rows[-1].id
        return batch
