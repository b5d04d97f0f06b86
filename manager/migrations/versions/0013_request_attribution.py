"""who and what each request was for: end user, team, API key alias, app, environment, tags

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TEXT_COLUMNS = ("end_user", "team", "api_key", "app", "environment")


def upgrade() -> None:
    with op.batch_alter_table("request_log") as batch_op:
        for name in TEXT_COLUMNS:
            batch_op.add_column(sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch_op:
        for name in (*TEXT_COLUMNS, "tags"):
            batch_op.drop_column(name)
