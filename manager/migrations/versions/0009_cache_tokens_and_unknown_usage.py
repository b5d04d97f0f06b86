"""cache and reasoning tokens, requests with unknown usage or cost, prompt-cache prices in the registry

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TOKENS = ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
ROLLUPS = ("usage_hourly", "usage_daily", "usage_model_hourly", "usage_model_daily")


def _counter(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade() -> None:
    # Plain ADD COLUMNs with constant defaults: no table is rewritten, whatever the size of the log.
    with op.batch_alter_table("request_log", recreate="never") as batch:
        for name in TOKENS:
            batch.add_column(_counter(name))
        batch.add_column(sa.Column("usage_known", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch.add_column(sa.Column("cost_known", sa.Boolean(), server_default=sa.true(), nullable=False))
    for table in ROLLUPS:
        with op.batch_alter_table(table, recreate="never") as batch:
            for name in (*TOKENS, "usage_unknown", "cost_unknown"):
                batch.add_column(_counter(name))
    with op.batch_alter_table("model_usage_stats", recreate="never") as batch:
        for name in ("total_cache_read_tokens", "total_cache_write_tokens", "total_reasoning_tokens",
                     "usage_unknown_requests", "cost_unknown_requests"):
            batch.add_column(_counter(name))
    with op.batch_alter_table("model_configurations", recreate="never") as batch:
        batch.add_column(sa.Column("cost_per_1k_cache_read", sa.Float(), nullable=True))
        batch.add_column(sa.Column("cost_per_1k_cache_write", sa.Float(), nullable=True))
    _cache_prices_from_catalog()


def _cache_prices_from_catalog() -> None:
    """Give registered models whose input price is the catalog's the catalog's prompt-cache prices."""
    from manager.prices import catalog_price

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT model_id, provider, cost_per_1k_input FROM model_configurations")).all()
    for model_id, provider, price_in in rows:
        found = catalog_price(model_id, provider)
        if found is None or price_in is None or abs(found.cost_per_1k_input - price_in) > 1e-12:
            continue
        conn.execute(
            sa.text("UPDATE model_configurations SET cost_per_1k_cache_read = :read, cost_per_1k_cache_write = :write "
                    "WHERE model_id = :model_id"),
            {"read": found.cost_per_1k_cache_read, "write": found.cost_per_1k_cache_write, "model_id": model_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("model_configurations") as batch:
        batch.drop_column("cost_per_1k_cache_write")
        batch.drop_column("cost_per_1k_cache_read")
    with op.batch_alter_table("model_usage_stats") as batch:
        for name in ("total_cache_read_tokens", "total_cache_write_tokens", "total_reasoning_tokens",
                     "usage_unknown_requests", "cost_unknown_requests"):
            batch.drop_column(name)
    for table in ROLLUPS:
        with op.batch_alter_table(table) as batch:
            for name in (*TOKENS, "usage_unknown", "cost_unknown"):
                batch.drop_column(name)
    with op.batch_alter_table("request_log") as batch:
        for name in (*TOKENS, "usage_known", "cost_known"):
            batch.drop_column(name)
