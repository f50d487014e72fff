"""Record when each api key was last used: ``principals.last_used``.

Null until the key's first use (and for every principal that exists when this runs: their
past use is unknown). The service writes it at most about once a minute per key and worker
(app/repositories/principals.py), so no index: it is read only by ``api-key list``.

Revision ID: 0002_principal_last_used
Revises: 0001_initial_schema
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0002_principal_last_used"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_column("last_used")
