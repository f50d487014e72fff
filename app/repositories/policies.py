"""Policies: the terms (lifetime, hashing, lock-out) that credentials follow."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..errors import DuplicateValue, InvalidData, NoRecord, StaleVersion
from ..models import Client, Credential, Policy
from ..models.types import utcnow
from ..storage import Prepared, detached_from_row
from .base import Repository, new_ext_id
from .pagination import Page, keyset_page

# What a new credential reads of its policy: the rest of the row is never shown with it.
TERMS_COLUMNS = ("id", "ext_id", "policy_type", "parameters")


def with_default_policies(build: Callable[[ColumnElement[bool]], Select]) -> Prepared:
    """A read of a client (or of something and its client) joined to the terms of the
    client's default policies, one row per policy (``default_policies_from``). ``build``
    makes the statement from the join's ON clause, which it joins ``policies`` with (an
    outer join: a client may have no default policy)."""
    policies, clients = Policy.__table__, Client.__table__
    default = and_(policies.c.client_id == clients.c.id, policies.c.is_default == true())
    return Prepared(lambda: build(default))


def default_policies_from(rows: list[tuple], start: int) -> dict[str, dict[str, Any]]:
    """The terms of the default policies in the columns from ``start`` on of a
    ``with_default_policies`` read, by type (``terms_for_new_credential`` makes a policy of
    the one a create needs)."""
    return {
        row[start + 2]: dict(zip(TERMS_COLUMNS, row[start:], strict=True))
        for row in rows
        if row[start] is not None
    }


# The statements every credential request runs are built once: composing a statement costs
# more than running it from the compiled cache.
@cache
def _default_policy() -> Select:
    return select(Policy).where(
        Policy.client_id == bindparam("client_id"),
        Policy.policy_type == bindparam("policy_type"),
        Policy.is_default.is_(True),
    )


@cache
def _policy_by_ext_id() -> Select:
    return select(Policy).where(
        Policy.client_id == bindparam("client_id"), Policy.ext_id == bindparam("ext_id")
    )


def _terms_statement(**criteria: str) -> Select:
    """The terms of the policy of a client that meets ``criteria`` (column: parameter)."""
    policies = Policy.__table__
    return select(*(policies.c[name] for name in TERMS_COLUMNS)).where(
        policies.c.client_id == bindparam("client_id"),
        *(policies.c[column] == bindparam(parameter) for column, parameter in criteria.items()),
    )


_DEFAULT_POLICY_TERMS = Prepared(
    lambda: _terms_statement(policy_type="policy_type").where(Policy.is_default == true())
)
_POLICY_TERMS_BY_EXT_ID = Prepared(lambda: _terms_statement(ext_id="ext_id"))


class PolicyRepository(Repository):
    def create(
        self,
        client: Client,
        name: str,
        policy_type: str,
        ext_id: str | None = None,
        default_policy: bool = False,
        parameters: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Policy:
        """A policy; a new default replaces the client's old default of the same type."""
        policy = Policy(
            client_id=client.id,
            ext_id=ext_id or new_ext_id(),
            name=name,
            description=description,
            policy_type=policy_type,
            is_default=default_policy,
            parameters=parameters or {},
        )
        conflict = DuplicateValue(
            f"A policy with extId '{policy.ext_id}' already exists in client '{client.ext_id}'",
            field="extId",
        )
        with self.changing(lambda: conflict) as session:
            if default_policy:
                _retire_default(session, client.id, policy_type)
            session.add(policy)
        set_committed_value(policy, "client", client)
        return policy

    def get(self, client: Client, ext_id: str) -> Policy:
        policy = self.session.scalars(
            _policy_by_ext_id(), {"client_id": client.id, "ext_id": ext_id}
        ).one_or_none()
        if policy is None:
            raise NoRecord(f"No policy '{ext_id}' in client '{client.ext_id}'")
        set_committed_value(policy, "client", client)  # known already: no second query
        return policy

    def page(
        self, client: Client, limit: int, token: str | None, total_result: bool = False
    ) -> Page:
        """One page of the client's policies in (created, extId) order."""
        statement = select(Policy).where(Policy.client_id == client.id)
        page = keyset_page(self.session, statement, Policy, limit, token, total_result)
        for policy in page.items:
            set_committed_value(policy, "client", client)
        return page

    def update(self, policy: Policy, changes: dict[str, Any]) -> Policy:
        """Apply a parsed PATCH body; ``changes["version"]``, when sent, must be the policy's
        version. ``default_policy`` true makes it the default of its type (the old default
        retired); a default stays the default until another policy takes its place."""
        changes = dict(changes)
        expected_version = changes.pop("version", None)
        make_default = changes.pop("default_policy", None)
        client = policy.client
        with self.changing() as session:
            if make_default:
                _serialise_defaults(session, client.id)
            changed = self._locked(session, client, policy.ext_id)
            if expected_version is not None and changed.version != expected_version:
                raise StaleVersion(
                    f"Policy '{changed.ext_id}' is at version {changed.version}, not "
                    f"{expected_version}: read it again and retry"
                )
            if make_default is False and changed.is_default:
                raise InvalidData(
                    f"Policy '{changed.ext_id}' is the default {changed.policy_type} of client "
                    f"'{client.ext_id}': make another policy the default instead",
                    field="defaultPolicy",
                )
            if make_default and not changed.is_default:
                _retire_default(session, client.id, changed.policy_type)
                changed.is_default = True
            for column, value in changes.items():
                setattr(changed, column, value)
            changed.version += 1
            changed.last_modified = utcnow()
        set_committed_value(changed, "client", client)
        return changed

    def delete(self, client_ext_id: str, ext_id: str) -> None:
        """Delete a policy that no credential follows and that is not its type's default
        (422 otherwise)."""
        in_use = InvalidData(
            f"Policy '{ext_id}' is in use by credentials of client '{client_ext_id}'",
            field="extId",
        )
        # A credential created meanwhile makes the deletion trip its reference: refused the same.
        with self.changing(lambda: in_use) as session:
            client = session.scalars(
                select(Client).where(Client.ext_id == client_ext_id)
            ).one_or_none()
            if client is None:
                raise NoRecord(f"No client '{client_ext_id}'")
            policy = self._locked(session, client, ext_id)
            if policy.is_default:
                raise InvalidData(
                    f"Policy '{ext_id}' is the default {policy.policy_type} of client "
                    f"'{client.ext_id}': make another policy the default first",
                    field="extId",
                )
            used_by = session.scalar(
                select(func.count())
                .select_from(Credential)
                .where(Credential.policy_id == policy.id)
            )
            if used_by:
                raise InvalidData(
                    f"Policy '{ext_id}' is in use by {used_by} credential(s) of client "
                    f"'{client.ext_id}'",
                    field="extId",
                )
            session.delete(policy)

    @staticmethod
    def _locked(session: Session, client: Client, ext_id: str) -> Policy:
        policy = session.scalars(
            _policy_by_ext_id().with_for_update().execution_options(populate_existing=True),
            {"client_id": client.id, "ext_id": ext_id},
        ).one_or_none()
        if policy is None:
            raise NoRecord(f"No policy '{ext_id}' in client '{client.ext_id}'")
        return policy

    def for_credential(self, client: Client, ext_id: str | None, policy_type: str) -> Policy:
        """The policy a credential follows, in the session: the named one, of the right
        type, or the client's default of ``policy_type``."""
        if ext_id is None:
            policy = self.session.scalars(
                _default_policy(), {"client_id": client.id, "policy_type": policy_type}
            ).one_or_none()
            if policy is None:
                raise NoRecord(f"Client '{client.ext_id}' has no default {policy_type}")
            return policy
        policy = self.get(client, ext_id)
        check_type(policy, policy_type)
        return policy

    def terms_for_new_credential(
        self, client: Client, ext_id: str | None, policy_type: str
    ) -> Policy:
        """What ``for_credential`` finds, read for its terms alone (lifetime, hashing, extId):
        one plain row, or none at all for a default policy whose terms were read with the
        client (``client.default_policies``). The policy returned is detached, so it can be shown
        and read but not changed; a new credential refers to it by ``id``."""
        if ext_id is None:
            terms = (client.default_policies or {}).get(policy_type)
            if terms is not None:
                return detached_from_row(Policy, {"client_id": client.id, **terms})
            row = _DEFAULT_POLICY_TERMS.one_or_none(
                self.work, {"client_id": client.id, "policy_type": policy_type}
            )
            if row is None:
                raise NoRecord(f"Client '{client.ext_id}' has no default {policy_type}")
        else:
            row = _POLICY_TERMS_BY_EXT_ID.one_or_none(
                self.work, {"client_id": client.id, "ext_id": ext_id}
            )
            if row is None:
                raise NoRecord(f"No policy '{ext_id}' in client '{client.ext_id}'")
        terms = dict(zip(TERMS_COLUMNS, row, strict=True))
        policy = detached_from_row(Policy, {"client_id": client.id, **terms})
        check_type(policy, policy_type)
        return policy


def _serialise_defaults(session: Session, client_id: int) -> None:
    """Serialise changes of a client's default policies (PostgreSQL row lock on the client;
    SQLite writers are serialised already)."""
    session.execute(select(Client.id).where(Client.id == client_id).with_for_update())


def _retire_default(session: Session, client_id: int, policy_type: str) -> None:
    """The client's default of ``policy_type`` is a default no more."""
    _serialise_defaults(session, client_id)
    session.execute(
        update(Policy)
        .where(
            Policy.client_id == client_id,
            Policy.policy_type == policy_type,
            Policy.is_default.is_(True),
        )
        .values(is_default=False, version=Policy.version + 1, last_modified=utcnow())
    )


def check_type(policy: Policy, policy_type: str) -> None:
    if policy.policy_type != policy_type:
        raise InvalidData(
            f"Policy '{policy.ext_id}' is a {policy.policy_type}, not a {policy_type}",
            field="policyExtId",
        )
