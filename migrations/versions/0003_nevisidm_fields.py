"""The fields of nevisIDM's documented bodies (contract section 12).

Users get the rest of "Create a user": ``userState`` (``state``, every existing user
``active``), ``languageCode`` (``en``), ``isTechnicalUser`` (false), ``name.title``, ``sex``,
``gender``, ``birthDate``, ``address`` (one JSON object, shown and changed whole), the rest of
``contacts`` (``mobile``, ``telephone``, ``telefax``), ``validity``, ``remarks`` and
``modificationComment``. The ``email`` column stays where it is and keeps its values: what
moves is where the API shows it, from the top level to ``contacts.email``.

Clients get ``displayName`` (JSON, by language) and ``remarks``; policies ``description``.
The lists of clients, of a client's users and of a client's policies are walked in
(created, extId) order: an index each.

Downgrade drops what upgrade added, and with it the values held there. No batch mode: these
tables are referenced by others, and SQLite (3.35 and later) adds and drops these columns
in place, where a copy of the table would trip the references.

Revision ID: 0003_nevisidm_fields
Revises: 0002_principal_last_used
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0003_nevisidm_fields"
down_revision = "0002_principal_last_used"
branch_labels = None
depends_on = None


def _user_columns() -> list[sa.Column]:
    return [
        sa.Column("state", sa.String(16), server_default="active", nullable=False),
        sa.Column("language_code", sa.String(16), server_default="en", nullable=False),
        sa.Column("is_technical_user", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("title", sa.String(255), nullable=True),
        sa.Column("sex", sa.String(8), nullable=True),
        sa.Column("gender", sa.String(8), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("address", sa.JSON(), nullable=True),
        sa.Column("mobile", sa.String(16), nullable=True),
        sa.Column("telephone", sa.String(16), nullable=True),
        sa.Column("telefax", sa.String(16), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remarks", sa.Text(), nullable=True),
        sa.Column("modification_comment", sa.String(1024), nullable=True),
    ]


def upgrade():
    for column in _user_columns():
        op.add_column("users", column)
    op.create_index("ix_users_client_created_ext_id", "users", ["client_id", "created", "ext_id"])
    op.add_column("clients", sa.Column("display_name", sa.JSON(), nullable=True))
    op.add_column("clients", sa.Column("remarks", sa.Text(), nullable=True))
    op.create_index("ix_clients_created_ext_id", "clients", ["created", "ext_id"])
    op.add_column("policies", sa.Column("description", sa.Text(), nullable=True))
    op.create_index(
        "ix_policies_client_created_ext_id", "policies", ["client_id", "created", "ext_id"]
    )


def downgrade():
    op.drop_index("ix_policies_client_created_ext_id", table_name="policies")
    op.drop_column("policies", "description")
    op.drop_index("ix_clients_created_ext_id", table_name="clients")
    op.drop_column("clients", "remarks")
    op.drop_column("clients", "display_name")
    op.drop_index("ix_users_client_created_ext_id", table_name="users")
    for column in reversed(_user_columns()):
        op.drop_column("users", column.name)
