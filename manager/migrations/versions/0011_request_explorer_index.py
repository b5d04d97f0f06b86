"""the request explorer reads the log by model, newest first: index (model_id, timestamp) again

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_request_log_model_timestamp", "request_log", ["model_id", "timestamp"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_request_log_model_timestamp", table_name="request_log")
