from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, select, true, update
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from ..errors import DuplicateValue, InvalidData, NoRecord
from ..models import Client, Policy
from .base import Repository, new_ext_id
from .statements import Prepared

if TYPE_CHECKING:
    from .transactions import Statements

# What a new credential reads of its policy: the rest of the row is never shown with it.
TERMS_COLUMNS = ("id", "ext_id", "policy_type", "parameters")

# Where a request's statements keep the terms of default policies read along with a user
# (``remember_default_terms``, the ``info`` of transactions.py): {client id: {type: terms}}.
_DEFAULT_TERMS = "nevisidm.default_policy_terms"

Model = TypeVar("Model")


class WithDefaultTerms:
    """A read of a client (or of something and its client) joined to the terms of the
    client's default policies, one row per policy: of all of them, or, for a create that
    names its policy type, of that one alone.

    ``build(on)`` makes the statement from the join's ON clause, which it joins
    ``policies`` with (an outer join: a client may have no default policy)."""

    def __init__(self, build: Callable[[ColumnElement[bool]], Select]) -> None:
        policies, clients = Policy.__table__, Client.__table__
        default = and_(policies.c.client_id == clients.c.id, policies.c.is_default == true())
        of_type = policies.c.policy_type == bindparam("policy_type")
        self._all_types = Prepared(lambda: build(default))
        self._one_type = Prepared(lambda: build(and_(default, of_type)))

    def all(
        self,
        on: Statements,
        values: Mapping[str, Any],
        *,
        policy_type: str | None,
        repeated: int,
    ) -> list[tuple[Any, ...]]:
        """The rows (``Prepared.all``), with the terms of the default policy of
        ``policy_type`` alone unless it is None."""
        if policy_type is None:
            return self._all_types.all(on, values, repeated=repeated)
        values = {**values, "policy_type": policy_type}
        return self._one_type.all(on, values, repeated=repeated)


def detached_from_row(model: type[Model], row: dict[str, Any]) -> Model:
    """An object of ``model`` for a row read or written with plain SQL: detached from the
    session, its columns set from ``row`` without attribute events (as the ORM fills the
    objects it loads). Columns missing from ``row`` are unloaded: reading one raises.

    What ``make_transient_to_detached`` makes of a new object, for a quarter of its cost:
    the identity key from the row's primary key, and the missing columns marked expired
    (its other work, on an object that has no history yet, changes nothing)."""
    mapper = model.__mapper__
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update(row)
    state = instance_state(instance)
    state.key = mapper.identity_key_from_primary_key(
        [row[column.key] for column in mapper.primary_key]
    )
    unloaded = _column_keys(mapper).difference(row)
    if unloaded:
        state.expired_attributes.update(unloaded)
    return instance


@cache
def _column_keys(mapper: Mapper) -> frozenset[str]:
    return frozenset(attribute.key for attribute in mapper.column_attrs)


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
            self.statements.info.pop(_DEFAULT_TERMS, None)
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
        """The policy a credential follows: the named one, of the right type, or the
        client's default of ``policy_type``."""
        if ext_id is None:
            policy = self.session.scalars(
                _default_policy(), {"client_id": client.id, "policy_type": policy_type}
            ).one_or_none()
            if policy is None:
                raise NoRecord(f"Client '{client.ext_id}' has no default {policy_type}")
            return policy
        policy = self.get(client, ext_id)
        self._check_type(policy, policy_type)
        return policy

    def terms_for_new_credential(
        self, client_id: int, client_ext_id: str, ext_id: str | None, policy_type: str
    ) -> Policy:
        """What ``for_credential`` finds, read for its terms alone (lifetime, hashing, extId):
        one plain row, no object of the session, and no query at all for a default policy
        whose terms were remembered with the user (``remember_default_terms``). The policy
        returned is detached, so it can be shown and read but not changed; a new credential
        refers to it by ``id``."""
        statements = self.statements
        if ext_id is None:
            remembered = statements.info.get(_DEFAULT_TERMS, {}).get(client_id, {})
            terms = remembered.get(policy_type)
            if terms is None:
                row = _DEFAULT_POLICY_TERMS.one_or_none(
                    statements, {"client_id": client_id, "policy_type": policy_type}
                )
                if row is None:
                    raise NoRecord(f"Client '{client_ext_id}' has no default {policy_type}")
                terms = dict(zip(TERMS_COLUMNS, row, strict=True))
        else:
            row = _POLICY_TERMS_BY_EXT_ID.one_or_none(
                statements, {"client_id": client_id, "ext_id": ext_id}
            )
            if row is None:
                raise NoRecord(f"No policy '{ext_id}' in client '{client_ext_id}'")
            terms = dict(zip(TERMS_COLUMNS, row, strict=True))
        policy = detached_from_row(Policy, {"client_id": client_id, **terms})
        self._check_type(policy, policy_type)
        return policy

    def remember_default_terms(self, client_id: int, terms: list[dict[str, Any]]) -> None:
        """Keep the terms of a client's default policies, read by another query of this
        transaction (the user's, app/repositories/users.py), for ``terms_for_new_credential``:
        a credential created for that user needs no query of its own for them. What is
        remembered goes at the end of the request, or when this repository makes a new
        default."""
        by_type = {policy["policy_type"]: policy for policy in terms}
        self.statements.info.setdefault(_DEFAULT_TERMS, {})[client_id] = by_type

    @staticmethod
    def _check_type(policy: Policy, policy_type: str) -> None:
        if policy.policy_type != policy_type:
            raise InvalidData(
                f"Policy '{policy.ext_id}' is a {policy.policy_type}, not a {policy_type}",
                field="policyExtId",
            )

    def _find(self, client: Client, ext_id: str) -> Policy | None:
        policy = self.session.scalars(
            _policy_by_ext_id(), {"client_id": client.id, "ext_id": ext_id}
        ).one_or_none()
        if policy is not None:
            set_committed_value(policy, "client", client)  # known already: no second query
        return policy
