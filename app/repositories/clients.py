"""Clients (tenants), each created with its default TicketPolicy and VascoPolicy."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, exists, select

from ..errors import DuplicateValue, InvalidData, NoRecord, StaleVersion
from ..models import (
    POLICY_TYPES,
    Client,
    Credential,
    Policy,
    TicketCredential,
    User,
    VascoTokenBlock,
)
from ..models.types import utcnow
from ..storage import column_keys, detached_from_row
from .base import Repository, new_ext_id
from .pagination import Page, keyset_page
from .policies import TERMS_COLUMNS, default_policies_from, with_default_policies

CLIENT_COLUMNS = column_keys(Client.__table__)


def _client_statement(default_policies: ColumnElement[bool]) -> Select:
    """The client and the terms of its default policies: a credential created in the
    client needs them next."""
    clients, policies = Client.__table__, Policy.__table__
    return (
        select(*clients.c, *(policies.c[name] for name in TERMS_COLUMNS))
        .outerjoin(policies, default_policies)
        .where(clients.c.ext_id == bindparam("client_ext_id"))
    )


# Every request about a client reads it through this.
_CLIENT = with_default_policies(_client_statement)


# What a new credential needs of its client (its id, and its extId for the response's
# Location): the rest of the row is not read for it.
CLIENT_OF_CREDENTIAL_COLUMNS = ("id", "ext_id")


def _client_of_credential_statement(default_policies: ColumnElement[bool]) -> Select:
    clients, policies = Client.__table__, Policy.__table__
    return (
        select(
            *(clients.c[name] for name in CLIENT_OF_CREDENTIAL_COLUMNS),
            *(policies.c[name] for name in TERMS_COLUMNS),
        )
        .outerjoin(policies, default_policies)
        .where(clients.c.ext_id == bindparam("client_ext_id"))
    )


_CLIENT_OF_CREDENTIAL = with_default_policies(_client_of_credential_statement)


def client_from_rows(
    rows: list[tuple], start: int = 0, columns: tuple[str, ...] = CLIENT_COLUMNS
) -> Client:
    """The client whose columns begin at ``start`` in ``rows`` (read with the terms of its
    default policies right after them, one row per policy; the columns before the terms are
    read from the first row only, the others may hold them unconverted: ``Prepared.all``'s
    ``repeated``), detached from the session, with the terms of its ``default_policies``."""
    end = start + len(columns)
    client = detached_from_row(Client, dict(zip(columns, rows[0][start:end], strict=True)))
    client.default_policies = default_policies_from(rows, end)
    return client


class ClientRepository(Repository):
    def create(self, name: str, ext_id: str | None = None, **columns: Any) -> Client:
        """A client, with its default TicketPolicy and VascoPolicy, in one transaction;
        ``columns`` are the clients table's others (``display_name``, ``remarks``)."""
        client = Client(ext_id=ext_id or new_ext_id(), name=name, **columns)
        default_policies = [
            Policy(
                client=client,
                ext_id=new_ext_id(),
                name=f"Default {policy_type}",
                policy_type=policy_type,
                is_default=True,
                parameters={},
            )
            for policy_type in POLICY_TYPES
        ]
        with self.changing(lambda: self._explain_conflict(client)) as session:
            session.add_all([client, *default_policies])
        return client

    def of_new_credential(self, ext_id: str) -> Client:
        """The client as a new credential needs it: its id and extId (other columns not
        loaded) and its ``default_policies``, detached, in one read."""
        rows = _CLIENT_OF_CREDENTIAL.all(
            self.work, {"client_ext_id": ext_id}, repeated=len(CLIENT_OF_CREDENTIAL_COLUMNS)
        )
        if not rows:
            raise NoRecord(f"No client '{ext_id}'")
        return client_from_rows(rows, columns=CLIENT_OF_CREDENTIAL_COLUMNS)

    def get(self, ext_id: str) -> Client:
        """The client, detached from the session, in one read with the terms of its default
        policies (``default_policies``)."""
        rows = _CLIENT.all(self.work, {"client_ext_id": ext_id}, repeated=len(CLIENT_COLUMNS))
        if not rows:
            raise NoRecord(f"No client '{ext_id}'")
        return client_from_rows(rows)

    def page(
        self,
        visible: Collection[str] | None,
        limit: int,
        token: str | None,
        total_result: bool = False,
    ) -> Page:
        """One page of the clients whose extIds are in ``visible`` (None: every client), in
        (created, extId) order."""
        statement = select(Client)
        if visible is not None:
            statement = statement.where(Client.ext_id.in_(sorted(visible)))
        return keyset_page(self.session, statement, Client, limit, token, total_result)

    def update(self, client: Client, changes: dict[str, Any]) -> Client:
        """Apply a parsed PATCH body; ``changes["version"]``, when sent, must be the client's
        version (409 otherwise)."""
        changes = dict(changes)
        expected_version = changes.pop("version", None)
        conflict = DuplicateValue(
            f"A client named '{changes.get('name')}' already exists", field="name"
        )
        with self.changing(lambda: conflict) as session:
            changed = self._locked(session, client.ext_id)
            if expected_version is not None and changed.version != expected_version:
                raise StaleVersion(
                    f"Client '{changed.ext_id}' is at version {changed.version}, not "
                    f"{expected_version}: read it again and retry"
                )
            for column, value in changes.items():
                setattr(changed, column, value)
            changed.version += 1
            changed.last_modified = utcnow()
        return changed

    def delete(self, ext_id: str) -> None:
        """Delete a client that has no users, with its policies and its VASCO pool, in one
        unit of work; a client with users is refused (422)."""
        has_users = InvalidData(
            f"Client '{ext_id}' still has users: delete them first", field="extId"
        )
        # A user created meanwhile makes the deletion trip its reference: refused the same.
        with self.changing(lambda: has_users) as session:
            client = self._locked(session, ext_id)
            if session.scalar(select(exists().where(User.client_id == client.id))):
                raise has_users
            credential_ids = select(Credential.id).where(Credential.client_id == client.id)
            blocks, tickets = VascoTokenBlock.__table__, TicketCredential.__table__
            session.execute(delete(blocks).where(blocks.c.credential_id.in_(credential_ids)))
            session.execute(delete(tickets).where(tickets.c.id.in_(credential_ids)))
            credentials = Credential.__table__
            session.execute(delete(credentials).where(credentials.c.client_id == client.id))
            policies = Policy.__table__
            session.execute(delete(policies).where(policies.c.client_id == client.id))
            session.delete(client)

    @staticmethod
    def _locked(session, ext_id: str) -> Client:
        """The client, read in the unit of work and locked until it ends."""
        client = session.scalars(
            select(Client)
            .where(Client.ext_id == ext_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if client is None:
            raise NoRecord(f"No client '{ext_id}'")
        return client

    def find(self, ext_id: str) -> Client | None:
        return self.session.scalars(select(Client).where(Client.ext_id == ext_id)).one_or_none()

    def _explain_conflict(self, client: Client) -> DuplicateValue:
        if self.find(client.ext_id) is not None:
            return DuplicateValue(
                f"A client with extId '{client.ext_id}' already exists", field="extId"
            )
        return DuplicateValue(f"A client named '{client.name}' already exists", field="name")
