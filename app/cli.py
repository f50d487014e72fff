"""Flask commands: ``flask --app wsgi api-key create|list|revoke|rotate ...``,
``... credential-key status|rotate``."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from .auth import BOOTSTRAP_PRINCIPAL, PERMISSIONS
from .crypto import CURRENT_KEY_SETTING, OLD_KEYS_SETTING, secret_box
from .errors import ApiError
from .repositories.principals import PrincipalRepository
from .repositories.secrets import SealedSecretRepository, UnreadableSecret

# The length of ``principals.name``.
NAME_MAX_LENGTH = 100


@click.group("api-key")
def api_key() -> None:
    """Manage the api keys of technical principals."""


def _new_principal_name(ctx: click.Context, param: click.Parameter, name: str) -> str:
    if not 1 <= len(name) <= NAME_MAX_LENGTH or not name.isprintable():
        raise click.BadParameter(f"1 to {NAME_MAX_LENGTH} printable characters")
    if name == BOOTSTRAP_PRINCIPAL:
        raise click.BadParameter(
            f"'{BOOTSTRAP_PRINCIPAL}' is kept for the principal of BOOTSTRAP_API_KEY"
        )
    return name


@api_key.command("create")
@click.option(
    "--name", required=True, callback=_new_principal_name, help="A unique name for the principal."
)
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    required=True,
    type=click.Choice(PERMISSIONS),
    help="A permission to grant; repeat for several.",
)
@click.option(
    "--client",
    "clients",
    multiple=True,
    help="A client extId the principal may act on; repeat for several. None: every client.",
)
@with_appcontext
def create_api_key(name: str, permissions: tuple[str, ...], clients: tuple[str, ...]) -> None:
    """Create a principal and print its new api key, alone, on the last line.

    The key is shown only this once; the database keeps its hash.
    """
    try:
        principal, key = PrincipalRepository().create(
            name=name,
            permissions=list(permissions),
            client_ext_ids=list(clients) or None,
        )
    except ApiError as error:
        raise click.ClickException(error.message) from None
    data_room = ", ".join(principal.client_ext_ids) if principal.client_ext_ids else "every client"
    granted = len(principal.permissions)
    click.echo(
        f"Created principal '{principal.name}' ({granted} permissions; clients: {data_room}).",
        err=True,
    )
    click.echo("Its api key (shown once):", err=True)
    click.echo(key)


@api_key.command("list")
@with_appcontext
def list_api_keys() -> None:
    """List the principals: name, created, last used, clients and permissions. Never a key.

    "last used" is written at most about once a minute per key and worker, so it is right
    to about a minute; "never" since the key was created or rotated.
    """
    principals = PrincipalRepository().every_principal()
    if not principals:
        click.echo("No api keys: create one with `flask --app wsgi api-key create`.", err=True)
        return
    rows = [("name", "created", "last used", "clients", "permissions")]
    rows += [
        (
            principal.name,
            _date(principal.created),
            _date(principal.last_used) if principal.last_used else "never",
            ", ".join(principal.client_ext_ids)
            if principal.client_ext_ids is not None
            else "every client",
            ", ".join(principal.permissions),
        )
        for principal in principals
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        leading = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        click.echo(f"{leading}  {row[4]}")
    if any(principal.name == BOOTSTRAP_PRINCIPAL for principal in principals):
        click.echo(
            f"'{BOOTSTRAP_PRINCIPAL}' is accepted only by a service started with "
            "BOOTSTRAP_API_KEY.",
            err=True,
        )


def _date(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _takes_effect() -> str:
    # The service's workers keep a principal they have read this long (their environment's
    # value, which is usually this command's too).
    seconds = current_app.config["PRINCIPAL_CACHE_SECONDS"]
    return f"within the service's PRINCIPAL_CACHE_SECONDS ({seconds:g} s in this environment)"


@api_key.command("revoke")
@click.option("--name", required=True, help="The principal whose key to revoke.")
@with_appcontext
def revoke_api_key(name: str) -> None:
    """Remove a principal and its api key.

    The running service stops accepting the key within its principal cache's lifetime
    (PRINCIPAL_CACHE_SECONDS, 10 s by default).
    """
    try:
        PrincipalRepository().revoke(name)
    except ApiError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Revoked the api key of principal '{name}': it stops working {_takes_effect()}.")
    if name == BOOTSTRAP_PRINCIPAL:
        click.echo(
            "A service started with BOOTSTRAP_API_KEY makes the principal again at its next "
            "start: unset the variable too.",
            err=True,
        )


@api_key.command("rotate")
@click.option("--name", required=True, help="The principal whose key to replace.")
@with_appcontext
def rotate_api_key(name: str) -> None:
    """Give a principal a new api key and print it, alone, on the last line.

    The old key stops working as a revoked one does; permissions and clients stay.
    """
    if name == BOOTSTRAP_PRINCIPAL:
        raise click.ClickException(
            f"The key of '{BOOTSTRAP_PRINCIPAL}' is BOOTSTRAP_API_KEY: set a new value and "
            "restart the service instead."
        )
    try:
        key = PrincipalRepository().rotate(name)
    except ApiError as error:
        raise click.ClickException(error.message) from None
    click.echo(
        f"Rotated the api key of principal '{name}': the old key stops working {_takes_effect()}.",
        err=True,
    )
    click.echo("Its new api key (shown once):", err=True)
    click.echo(key)


@click.group("credential-key")
def credential_key() -> None:
    """Rotate the key that encrypts stored credential secrets (VASCO data blocks).

    Procedure: docs/deployment.md, "Rotating the key".
    """


@credential_key.command("status")
@with_appcontext
def key_status() -> None:
    """Print how many stored secrets each key sealed, so that you know when an old key
    (in CREDENTIAL_ENCRYPTION_OLD_KEYS) can be removed."""
    box = secret_box()
    counts = SealedSecretRepository().count_by_key_id()
    key_ids = [box.key_id, *box.old_key_ids]
    key_ids += sorted(key_id for key_id in counts if key_id not in key_ids)
    click.echo(f"{'key id':<10}{'secrets':>10}  key")
    for key_id in key_ids:
        if key_id == box.key_id:
            role = f"current ({CURRENT_KEY_SETTING})"
        elif key_id in box.old_key_ids:
            role = f"old ({OLD_KEYS_SETTING})"
        else:
            role = "not configured: these cannot be opened"
        click.echo(f"{key_id:<10}{counts.get(key_id, 0):>10}  {role}")
    elsewhere = sum(count for key_id, count in counts.items() if key_id != box.key_id)
    if elsewhere:
        click.echo(
            f"{elsewhere} secrets are not sealed under the current key {box.key_id}: "
            "run `flask --app wsgi credential-key rotate`, and keep the old keys until then."
        )
    else:
        click.echo(
            f"Every secret is sealed under the current key {box.key_id}: "
            f"the old keys can be removed from {OLD_KEYS_SETTING}."
        )


@credential_key.command("rotate")
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    help="Secrets re-sealed per transaction.",
)
@with_appcontext
def rotate_key(batch_size: int) -> None:
    """Seal every stored secret that is not yet under the current key again under it.

    Each batch is a transaction of its own: the command can be interrupted and run again,
    and then finishes the rest. Secrets that requests rewrite meanwhile keep the requests'
    values (they are skipped here). The last line of the output is the summary.
    """
    box = secret_box()
    repository = SealedSecretRepository()
    to_do = repository.count_not_sealed_under(box.key_id)
    resealed = skipped = 0
    unreadable = UnreadableSummary()
    after_id = 0
    try:
        with click.progressbar(
            length=to_do,
            label=f"Re-sealing {to_do} secrets under key {box.key_id}",
            file=sys.stderr,  # stdout keeps only the summary
        ) as progress:
            while True:
                batch = repository.reseal_batch(box, after_id, batch_size)
                if batch.last_id is None:
                    break
                after_id = batch.last_id
                resealed += batch.resealed
                skipped += batch.skipped
                unreadable.add(batch.unreadable)
                progress.update(batch.looked_at)
    except (Exception, KeyboardInterrupt):
        click.echo(
            f"Interrupted after re-sealing {resealed} secrets; the batch under way was rolled "
            "back. Run the command again to finish.",
            err=True,
        )
        raise
    click.echo(f"Re-sealed {resealed}, skipped {skipped}, unreadable {unreadable.count}.")
    if skipped:
        click.echo(
            f"{skipped} secrets were rewritten by requests during the run and were left to "
            "them; `credential-key status` shows whether any is still under an old key.",
            err=True,
        )
    if unreadable.count:
        raise click.ClickException(unreadable.describe())


class UnreadableSummary:
    """Why secrets could not be opened: counts by missing key id, and (the first few) ids of
    blocks that failed their integrity check. Bounded, however many blocks there are."""

    SHOWN_BLOCK_IDS = 20

    def __init__(self) -> None:
        self.count = 0
        self.missing_keys: Counter[str] = Counter()
        self.damaged = 0
        self.damaged_block_ids: list[int] = []

    def add(self, secrets: list[UnreadableSecret]) -> None:
        for secret in secrets:
            self.count += 1
            if not secret.key_configured:
                self.missing_keys[secret.key_id] += 1
                continue
            self.damaged += 1
            if len(self.damaged_block_ids) < self.SHOWN_BLOCK_IDS:
                self.damaged_block_ids.append(secret.block_id)

    def describe(self) -> str:
        reasons = [
            f"{count} sealed under key {key_id}, which is not configured (add that key to "
            f"{OLD_KEYS_SETTING})"
            for key_id, count in sorted(self.missing_keys.items())
        ]
        if self.damaged:
            shown = ", ".join(str(block_id) for block_id in self.damaged_block_ids)
            more = self.damaged - len(self.damaged_block_ids)
            reasons.append(
                f"{self.damaged} failed their integrity check (tampered or moved rows; "
                f"vasco_token_blocks ids {shown}{f' and {more} more' if more else ''})"
            )
        return f"{self.count} secrets could not be opened and were left as they are: " + (
            "; ".join(reasons)
        )
