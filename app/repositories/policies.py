from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..errors import DuplicateValue, InvalidData, NoRecord
from ..models import Client, Policy
from .base import Repository, new_ext_id


class PolicyRepository(Repository):
    def create(
        self,
        client: Client,
        name: str,
        policy_type: str,
        ext_id: str | None = None,
        default_policy: bool = False,
        parameters: dict[str, Any] | None = None,
    ) -> Policy:
        """A policy; a new default replaces the client's old default of the same type."""
        policy = Policy(
            client=client,
            ext_id=ext_id or new_ext_id(),
            name=name,
            policy_type=policy_type,
            is_default=default_policy,
            parameters=parameters or {},
        )
        if default_policy:
            # Serialise default changes per client (PostgreSQL row lock; SQLite writers are
            # serialised already), then retire the old default.
            self.session.execute(select(Client.id).where(Client.id == client.id).with_for_update())
            self.session.execute(
                update(Policy)
                .where(
                    Policy.client_id == client.id,
                    Policy.policy_type == policy_type,
                    Policy.is_default.is_(True),
                )
                .values(is_default=False, version=Policy.version + 1)
            )
        self.session.add(policy)
        self.commit(
            lambda: DuplicateValue(
                f"A policy with extId '{policy.ext_id}' already exists in client '{client.ext_id}'",
                field="extId",
            )
        )
        return policy

    def get(self, client: Client, ext_id: str) -> Policy:
        policy = self._find(client, ext_id)
        if policy is None:
            raise NoRecord(f"No policy '{ext_id}' in client '{client.ext_id}'")
        return policy

    def for_credential(self, client: Client, ext_id: str | None, policy_type: str) -> Policy:
        """The policy a new credential follows: the named one, of the right type, or the
        client's default of ``policy_type``."""
        if ext_id is None:
            policy = self.session.scalars(
                select(Policy).where(
                    Policy.client_id == client.id,
                    Policy.policy_type == policy_type,
                    Policy.is_default.is_(True),
                )
            ).one_or_none()
            if policy is None:
                raise NoRecord(f"Client '{client.ext_id}' has no default {policy_type}")
            return policy
        policy = self.get(client, ext_id)
        if policy.policy_type != policy_type:
            raise InvalidData(
                f"Policy '{ext_id}' is a {policy.policy_type}, not a {policy_type}",
                field="policyExtId",
            )
        return policy

    def _find(self, client: Client, ext_id: str) -> Policy | None:
        policy = self.session.scalars(
            select(Policy).where(Policy.client_id == client.id, Policy.ext_id == ext_id)
        ).one_or_none()
        if policy is not None:
            set_committed_value(policy, "client", client)  # known already: no second query
        return policy
