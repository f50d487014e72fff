"""Create clients, users, policies, principals and credentials.

The uniqueness rules of the contract are constraints here, so they hold under concurrency:
extIds per client, loginId per client, one default policy per type and client, and one
ticket credential per user (a partial unique index).

Revision ID: 0001_initial_schema
Revises:
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0001_initial_schema"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "clients",
        sa.Column("ext_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ext_id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "principals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("client_ext_ids", sa.JSON(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "policies",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("policy_type", sa.String(length=32), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ext_id", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "ext_id", name="uq_policies_client_ext_id"),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.create_index(
            "uq_policies_one_default_per_type",
            ["client_id", "policy_type"],
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )

    op.create_table(
        "users",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("login_id", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("family_name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ext_id", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "ext_id", name="uq_users_client_ext_id"),
        sa.UniqueConstraint("client_id", "login_id", name="uq_users_client_login_id"),
    )
    op.create_table(
        "credentials",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("state_name", sa.String(length=32), nullable=False),
        sa.Column("state_change_reason", sa.String(length=255), nullable=True),
        sa.Column("state_change_detail", sa.String(length=1024), nullable=True),
        sa.Column("last_successful_login_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("successful_login_count", sa.Integer(), nullable=False),
        sa.Column("last_failed_login_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_login_count", sa.Integer(), nullable=False),
        sa.Column("modification_comment", sa.String(length=1024), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ext_id", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "ext_id", name="uq_credentials_client_ext_id"),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credentials_client_created_ext_id", ["client_id", "created", "ext_id"], unique=False
        )
        batch_op.create_index(
            "ix_credentials_user_created_ext_id", ["user_id", "created", "ext_id"], unique=False
        )
        batch_op.create_index(
            "uq_credentials_one_ticket_per_user",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("kind = 'TICKET'"),
            postgresql_where=sa.text("kind = 'TICKET'"),
        )

    op.create_table(
        "ticket_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_hash", sa.String(length=128), nullable=False),
        sa.Column("identification", sa.String(length=255), nullable=True),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("success_count", sa.Integer(), nullable=False),
        sa.Column("reset_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["credentials.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "vasco_token_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("auth_mode", sa.String(length=8), nullable=False),
        sa.Column("sealed_data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["credential_id"], ["credentials.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id", "auth_mode", name="uq_vasco_blocks_auth_mode"),
    )


def downgrade():
    op.drop_table("vasco_token_blocks")
    op.drop_table("ticket_credentials")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_credentials_one_ticket_per_user",
            sqlite_where=sa.text("kind = 'TICKET'"),
            postgresql_where=sa.text("kind = 'TICKET'"),
        )
        batch_op.drop_index("ix_credentials_user_created_ext_id")
        batch_op.drop_index("ix_credentials_client_created_ext_id")

    op.drop_table("credentials")
    op.drop_table("users")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_policies_one_default_per_type",
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )

    op.drop_table("policies")
    op.drop_table("principals")
    op.drop_table("clients")
