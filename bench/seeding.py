"""The bench's databases: migrating a fresh one, seeding its client, users and ticket
credentials in bulk, PostgreSQL's schema of its own, and the cached SQLite database that holds
BENCH_SCALE_CREDENTIALS ticket credentials (BENCH_SCALE)."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from settings import CACHE, CLIENT, REPO, Settings, log


def service_app(database_url: str, encryption_key: str):
    """The service's app, in this process, for migrating and seeding."""
    from app import create_app

    return create_app(
        {
            "DATABASE_URL": database_url,
            "CREDENTIAL_ENCRYPTION_KEY": encryption_key,
            "BOOTSTRAP_API_KEY": None,
            "LOG_LEVEL": "WARNING",
        }
    )


def migrate(database_url: str, encryption_key: str) -> None:
    import flask_migrate

    from app.extensions import db
    from app.migrations import init_migrations

    app = service_app(database_url, encryption_key)
    init_migrations(app)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


@contextlib.contextmanager
def postgresql_schema(server_url: str) -> Iterator[str]:
    """A schema of our own on the server, dropped afterwards; yields the URL that uses it."""
    from tests.support import postgresql_schema as own_schema

    with own_schema(server_url, prefix="bench") as url:
        yield url
    log("dropped the bench's PostgreSQL schema")


def seed_client(database_url: str, encryption_key: str) -> None:
    """The client every scenario works in, with its default policies (through the
    repository, as the API would create it)."""
    from app.repositories.clients import ClientRepository

    app = service_app(database_url, encryption_key)
    with app.app_context():
        ClientRepository().create(name="Bench", ext_id=CLIENT)
        from app.extensions import db

        db.engine.dispose()


def _client_row(connection) -> tuple[int, int]:
    """(client id, its default TicketPolicy id)."""
    from sqlalchemy import select

    from app.models import TICKET_POLICY, Client, Policy

    client_id = connection.scalar(select(Client.id).where(Client.ext_id == CLIENT))
    policy_id = connection.scalar(
        select(Policy.id).where(
            Policy.client_id == client_id,
            Policy.policy_type == TICKET_POLICY,
            Policy.is_default.is_(True),
        )
    )
    return client_id, policy_id


def seed_users(database_url: str, prefix: str, count: int, batch: int = 20_000) -> None:
    """Users <prefix>0 .. <prefix>(count - 1), in bulk (Core executemany)."""
    from sqlalchemy import create_engine, insert

    from app.models import User

    engine = create_engine(database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as connection:
        client_id, _ = _client_row(connection)
        for start in range(0, count, batch):
            rows = [
                {
                    "ext_id": f"{prefix}{index}",
                    "login_id": f"{prefix}{index}",
                    "client_id": client_id,
                    "created": now,
                    "last_modified": now,
                    "version": 1,
                }
                for index in range(start, min(count, start + batch))
            ]
            connection.execute(insert(User), rows)
    engine.dispose()


def seed_tickets(database_url: str, count: int, batch: int = 25_000) -> None:
    """``count`` users holding a ticket credential each, in bulk (Core executemany with
    explicit ids, so that no row needs a round trip of its own). The ``credentials`` rows
    come from the service's own row builder, so that they hold every column a ticket created
    through the API would."""
    from sqlalchemy import create_engine, func, insert, select
    from sqlalchemy.orm import Session

    from app.crypto import hash_ticket
    from app.models import TICKET, Credential, Policy, TicketCredential, User
    from app.repositories.credentials import new_credential_row

    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def fast_bulk_load(dbapi_connection, record):  # a throw-away load: no fsync
            dbapi_connection.execute("PRAGMA synchronous = OFF")

    now = datetime.now(UTC).replace(microsecond=0)
    ticket_hash = hash_ticket("bench-seeded-ticket")
    credentials = Credential.__table__
    tickets = TicketCredential.__table__
    with engine.begin() as connection:
        client_id, policy_id = _client_row(connection)
        # The client's default TicketPolicy, for its id and its credentials' lifetime.
        with Session(bind=connection) as session:
            policy = session.get(Policy, policy_id)
        first_user = (connection.scalar(select(func.max(User.id))) or 0) + 1
        first_credential = (connection.scalar(select(func.max(Credential.id))) or 0) + 1
        for start in range(0, count, batch):
            indexes = range(start, min(count, start + batch))
            # Spread the creation times, as a real history would.
            created = [now - timedelta(seconds=count - index) for index in indexes]
            connection.execute(
                insert(User),
                [
                    {
                        "id": first_user + index,
                        "ext_id": f"seeded{index}",
                        "login_id": f"seeded{index}",
                        "client_id": client_id,
                        "created": moment,
                        "last_modified": moment,
                        "version": 1,
                    }
                    for index, moment in zip(indexes, created, strict=True)
                ],
            )
            connection.execute(
                insert(credentials),
                [
                    {
                        "id": first_credential + index,
                        **new_credential_row(
                            kind=TICKET,
                            ext_id=f"seeded-ticket{index}",
                            client_id=client_id,
                            user_id=first_user + index,
                            policy=policy,
                            state_name="active",
                            now=moment,
                        ),
                    }
                    for index, moment in zip(indexes, created, strict=True)
                ],
            )
            connection.execute(
                insert(tickets),
                [
                    {
                        "id": first_credential + index,
                        "ticket_hash": ticket_hash,
                        "failure_count": 0,
                        "success_count": 0,
                        "reset_count": 0,
                    }
                    for index in indexes
                ],
            )
            if (start // batch) % 8 == 0:
                log(f"  seeded {start + len(indexes):,} of {count:,} ticket credentials")
    engine.dispose()


def users_with_tickets(database_url: str, limit: int = 20_000) -> list[str]:
    from sqlalchemy import create_engine, select

    from app.models import TICKET, Client, Credential, User

    engine = create_engine(database_url)
    with engine.connect() as connection:
        ext_ids = connection.scalars(
            select(User.ext_id)
            .join(Credential, Credential.user_id == User.id)
            .join(Client, Client.id == User.client_id)
            .where(Client.ext_id == CLIENT, Credential.kind == TICKET)
            .order_by(Credential.id.desc())
            .limit(limit)
        ).all()
    engine.dispose()
    return list(ext_ids)


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(REPO / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head() or "none"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def scale_database(settings: Settings, directory: Path, encryption_key: str) -> Path:
    """A copy of the cached SQLite database holding the seeded ticket credentials (the
    cache is built on first use, and again when the migrations change)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"scale-{head_revision()}-{settings.scale_credentials}.sqlite"
    if not cached.exists():
        log(f"building the scale cache {cached.name} (once; later runs copy it)")
        building = cached.with_suffix(".building")
        building.unlink(missing_ok=True)
        started = time.monotonic()
        migrate(sqlite_url(building), encryption_key)
        seed_client(sqlite_url(building), encryption_key)
        seed_tickets(sqlite_url(building), settings.scale_credentials)
        # One self-contained file: fold the WAL back in.
        import sqlite3

        connection = sqlite3.connect(building)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.close()
        building.rename(cached)
        Path(f"{building}-writer.lock").unlink(missing_ok=True)  # app/sqlite.py's
        log(f"scale cache built in {time.monotonic() - started:.0f} s")
    target = directory / "scale.sqlite"
    shutil.copyfile(cached, target)
    return target
