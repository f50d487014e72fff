from __future__ import annotations

from sqlalchemy import select

from ..errors import DuplicateValue, NoRecord
from ..models import POLICY_TYPES, Client, Policy
from .base import Repository, new_ext_id


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
        self.session.add_all([client, *default_policies])
        self.commit(lambda: self._explain_conflict(client))
        return client

    def get(self, ext_id: str) -> Client:
        client = self.find(ext_id)
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
