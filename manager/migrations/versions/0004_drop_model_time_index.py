"""drop the request log's (model_id, timestamp) index: nothing reads the log by model

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_log") as batch_op:
        batch_op.drop_index("ix_request_log_model_timestamp")


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch_op:
        batch_op.create_index("ix_request_log_model_timestamp", ["model_id", "timestamp"], unique=False)
