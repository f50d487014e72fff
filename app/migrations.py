"""Schema migrations: ``flask db ...`` (flask-migrate over Alembic), loaded only when used.

A worker that serves requests never migrates, and importing Alembic and flask-migrate would
cost each one megabytes of memory. So ``flask db`` is a command group that loads them when
the command line asks for it, and code that migrates in-process (tests, the benchmark)
calls ``init_migrations`` first. What a serving worker needs to know of the migrations, the
revisions they contain, ``shipped_revisions`` reads from the scripts themselves.
"""

from __future__ import annotations

import ast
import contextlib
import functools
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo

from .extensions import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def init_migrations(app: Flask) -> None:
    """Bind flask-migrate to ``app`` (once), for ``flask_migrate.upgrade()`` and the like."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)


class MigrationCommands(click.Group):
    """``flask db``: flask-migrate's command group, loaded when the command line reaches it
    (its options, such as ``--directory``, and its commands are flask-migrate's own)."""

    def _commands(self, ctx: click.Context) -> click.Group:
        init_migrations(ctx.ensure_object(ScriptInfo).load_app())
        from flask_migrate.cli import db as commands

        return commands

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        commands = self._commands(ctx)
        self.params, self.callback = commands.params, commands.callback
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands(ctx).list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._commands(ctx).get_command(ctx, name)


migration_commands = MigrationCommands("db", help="Perform database migrations (Alembic).")


@functools.cache
def shipped_revisions(directory: Path = MIGRATIONS) -> tuple[frozenset[str], frozenset[str]]:
    """The head revisions and every revision of the migration scripts in ``directory``,
    read from each script's ``revision`` and ``down_revision`` as Alembic reads them."""
    parents: dict[str, frozenset[str]] = {}
    for script in sorted((directory / "versions").glob("*.py")):
        names = _module_constants(script)
        if isinstance(names.get("revision"), str):
            down = names.get("down_revision")
            if down is None:
                down = ()
            elif isinstance(down, str):
                down = (down,)
            parents[names["revision"]] = frozenset(down)
    every = frozenset(parents)
    referenced = frozenset().union(*parents.values()) if parents else frozenset()
    return every - referenced, every


def _module_constants(script: Path) -> dict[str, Any]:
    constants = {}
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                # Only constants: an expression (a call, a name) is not a revision.
                with contextlib.suppress(ValueError):
                    constants[target.id] = ast.literal_eval(value)
    return constants
