"""spend per attribution value: daily per (dimension, value, day, model), monthly per (dimension, value) with a
rank index, daily per dimension; filled from the request log's attribution columns

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COUNTERS = ("requests", "failures", "input_tokens", "output_tokens", "cost_nanos", "cost_unknown")
DIMENSIONS = {"user": "end_user", "team": "team", "api_key": "api_key", "app": "app", "environment": "environment",
              "tag": "tags"}


def _counters() -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS]


def _key(name: str, length: int) -> sa.Column:
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=False)


def upgrade() -> None:
    op.create_table("usage_attribution_daily", *_counters(), _key("dimension", 16), _key("value", 128),
                    sa.Column("day", sa.DateTime(timezone=True), nullable=False), _key("model_id", 128),
                    sa.PrimaryKeyConstraint("dimension", "value", "day", "model_id"), sqlite_with_rowid=False)
    op.create_table("usage_attribution_monthly", *_counters(), _key("dimension", 16), _key("value", 128),
                    sa.Column("month", sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint("dimension", "value", "month"), sqlite_with_rowid=False)
    op.create_index("ix_usage_attribution_monthly_rank", "usage_attribution_monthly",
                    ["dimension", "month", "cost_nanos", "requests"])
    op.create_table("usage_attribution_dimension_daily", *_counters(), _key("dimension", 16),
                    sa.Column("day", sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint("dimension", "day"), sqlite_with_rowid=False)
    _backfill()


def _backfill() -> None:
    """Sum the attributed requests already stored (those ingested since 0013) into the three tables."""
    conn = op.get_bind()
    columns = ["timestamp", "model_id", "success", "input_tokens", "output_tokens", "cost_nanos", "cost_known",
               *DIMENSIONS.values()]
    log = sa.table("request_log", sa.column("timestamp", sa.DateTime(timezone=True)),
                   *(sa.column(n) for n in columns[1:]))
    attributed = sa.or_(*(log.c[n].isnot(None) for n in DIMENSIONS.values()))
    levels: list[dict[tuple, list[int]]] = [{}, {}, {}]
    for row in conn.execute(sa.select(*(log.c[n] for n in columns)).where(attributed)).mappings():
        moment = row["timestamp"]
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        counts = (1, 0 if row["success"] else 1, int(row["input_tokens"]), int(row["output_tokens"]),
                  int(row["cost_nanos"]), 0 if row["cost_known"] else 1)
        for dimension, column in DIMENSIONS.items():
            value = row[column]
            if value is None:
                continue
            for item in ([t for t in value.split(";") if t] if dimension == "tag" else [value]):
                month = datetime(day.year, day.month, 1, tzinfo=UTC)
                for level, key in zip(levels, ((dimension, item, day, row["model_id"]), (dimension, item, month),
                                               (dimension, day)), strict=True):
                    total = level.setdefault(key, [0] * len(COUNTERS))
                    for i, count in enumerate(counts):
                        total[i] += count
    names = (("dimension", "value", "day", "model_id"), ("dimension", "value", "month"), ("dimension", "day"))
    tables = ("usage_attribution_daily", "usage_attribution_monthly", "usage_attribution_dimension_daily")
    for level, keys, name in zip(levels, names, tables, strict=True):
        target = sa.table(name, *(sa.column(k, sa.DateTime(timezone=True)) if k in ("day", "month") else sa.column(k)
                                  for k in keys), *(sa.column(c) for c in COUNTERS))
        rows = [dict(zip((*keys, *COUNTERS), (*key, *total), strict=True)) for key, total in level.items()]
        for first in range(0, len(rows), 20_000):
            conn.execute(sa.insert(target), rows[first:first + 20_000])


def downgrade() -> None:
    op.drop_table("usage_attribution_dimension_daily")
    op.drop_index("ix_usage_attribution_monthly_rank", table_name="usage_attribution_monthly")
    op.drop_table("usage_attribution_monthly")
    op.drop_table("usage_attribution_daily")
