"""rollup latency histograms as packed binary (bucket, count) pairs instead of JSON text

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import json

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = {"usage_hourly": "hour", "usage_daily": "day"}
KEYS = ("model_id", "request_type", "language")
STORED = np.dtype([("bucket", "<i2"), ("count", "<i8")])
CHUNK = 20_000


def _packed(text: str | None) -> bytes:
    hist = {int(k): int(v) for k, v in json.loads(text or "{}").items()}
    packed = np.empty(len(hist), dtype=STORED)
    packed["bucket"] = sorted(hist)
    packed["count"] = [hist[b] for b in sorted(hist)]
    return packed.tobytes()


def _text(stored: bytes | None) -> str:
    packed = np.frombuffer(stored or b"", dtype=STORED)
    return json.dumps({str(b): int(c) for b, c in zip(packed["bucket"], packed["count"])}, separators=(",", ":"))


def _convert(table_name: str, grain: str, source: str, target: str, convert) -> None:
    conn = op.get_bind()
    table = sa.table(table_name, *(sa.column(c) for c in (grain, *KEYS, source, target)))
    where = sa.and_(*(table.c[c] == sa.bindparam(f"k_{c}") for c in (grain, *KEYS)))
    statement = sa.update(table).where(where).values({target: sa.bindparam("v")})
    rows = conn.execute(sa.select(table.c[grain], *(table.c[c] for c in KEYS), table.c[source])).all()
    for start in range(0, len(rows), CHUNK):
        batch = [
            {**{f"k_{c}": value for c, value in zip((grain, *KEYS), row[:-1])}, "v": convert(row[-1])}
            for row in rows[start : start + CHUNK]
        ]
        conn.execute(statement, batch)


def _swap(column_type, convert) -> None:
    for table_name, grain in TABLES.items():
        op.add_column(table_name, sa.Column("latency_hist_new", column_type, nullable=True))
        _convert(table_name, grain, "latency_hist", "latency_hist_new", convert)
        with op.batch_alter_table(table_name) as batch_op:
            batch_op.drop_column("latency_hist")
            batch_op.alter_column("latency_hist_new", new_column_name="latency_hist", nullable=False,
                                  existing_type=column_type)


def upgrade() -> None:
    _swap(sa.LargeBinary(), _packed)


def downgrade() -> None:
    _swap(sa.Text(), _text)
