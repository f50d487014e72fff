"""Clients (tenants), each created with its default TicketPolicy and VascoPolicy."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, bindparam, select

from ..errors import DuplicateValue, NoRecord
from ..models import POLICY_TYPES, Client, Policy
from ..storage import column_keys, detached_from_row
from .base import Repository, new_ext_id
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


def client_from_rows(rows: list[tuple], start: int = 0) -> Client:
    """The client whose columns begin at ``start`` in ``rows`` (read with the terms of its
    default policies right after them, one row per policy; the columns before the terms are
    read from the first row only, the others may hold them unconverted: ``Prepared.all``'s
    ``repeated``), detached from the session, with the terms of its ``default_policies``."""
    end = start + len(CLIENT_COLUMNS)
    client = detached_from_row(Client, dict(zip(CLIENT_COLUMNS, rows[0][start:end], strict=True)))
    client.default_policies = default_policies_from(rows, end)
    return client


class ClientRepository(Repository):
    def create(self, name: str, ext_id: str | None = None) -> Client:
        """A client, with its default TicketPolicy and VascoPolicy, in one transaction."""
        client = Client(ext_id=ext_id or new_ext_id(), name=name)
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

    def get(self, ext_id: str) -> Client:
        """The client, detached from the session, in one read with the terms of its default
        policies (``default_policies``)."""
        rows = _CLIENT.all(self.work, {"client_ext_id": ext_id}, repeated=len(CLIENT_COLUMNS))
        if not rows:
            raise NoRecord(f"No client '{ext_id}'")
        return client_from_rows(rows)

    def find(self, ext_id: str) -> Client | None:
        return self.session.scalars(select(Client).where(Client.ext_id == ext_id)).one_or_none()

    def _explain_conflict(self, client: Client) -> DuplicateValue:
        if self.find(client.ext_id) is not None:
            return DuplicateValue(
                f"A client with extId '{client.ext_id}' already exists", field="extId"
            )
        return DuplicateValue(f"A client named '{client.name}' already exists", field="name")
