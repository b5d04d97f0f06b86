"""what a self-hosted model's host costs an hour (rankings and what-if spread it over its traffic)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_configurations") as batch_op:
        batch_op.add_column(sa.Column("host_cost_per_hour", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_configurations") as batch_op:
        batch_op.drop_column("host_cost_per_hour")
