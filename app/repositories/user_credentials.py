"""A user's credentials of every type, a page at a time."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload, with_polymorphic
from sqlalchemy.orm.attributes import set_committed_value

from ..models import Credential, TicketCredential, User, VascoCredential
from .base import Repository
from .pagination import Page, keyset_page
from .vasco import VascoRepository


class UserCredentialsRepository(Repository):
    def page(self, user: User, limit: int, token: str | None, total_result: bool = False) -> Page:
        """One page of ``user``'s credentials in (created, extId) order: tickets and
        assigned VASCO credentials, each loaded as its own type (VASCO blocks decrypted)."""
        credential = with_polymorphic(Credential, [TicketCredential, VascoCredential])
        statement = (
            select(credential)
            .where(credential.user_id == user.id)
            .options(joinedload(credential.policy))
        )
        page = keyset_page(self.session, statement, credential, limit, token, total_result)
        for item in page.items:
            set_committed_value(item, "user", user)
            set_committed_value(item, "client", user.client)
            if isinstance(item, VascoCredential):
                VascoRepository().reveal(item)
        return page
