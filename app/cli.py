"""Flask commands: ``flask --app wsgi api-key create ...``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .auth import PERMISSIONS
from .errors import ApiError
from .repositories.principals import PrincipalRepository


@click.group("api-key")
def api_key() -> None:
    """Manage the api keys of technical principals."""


@api_key.command("create")
@click.option("--name", required=True, help="A unique name for the principal.")
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
