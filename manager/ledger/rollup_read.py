"""Reading rollup rows back, totals past 64 bits as exact Python integers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Float, Integer, select, type_coerce
from sqlalchemy.types import NullType

from manager.ledger.grains import LARGEST_TOTAL


def read_rollups(conn: Connection, table: Any, grain: str, *conditions: Any) -> pd.DataFrame:
    """Return a rollup table's rows matching the conditions as a frame; column `start` is each row's period.

    The driver's own values (no per-value type processing, no SQLAlchemy Row objects, which cost as much
    as the read), turned into one typed column each.
    """
    query = select(*(type_coerce(c, NullType()) for c in table.c)).where(*conditions)
    rows = conn.execute(query).cursor.fetchall()
    values = list(zip(*rows, strict=True)) if rows else [()] * len(table.c)
    data: dict[str, Any] = {}
    for column, column_values in zip(table.c, values, strict=True):
        if column.name == grain:
            data["start"] = pd.to_datetime(pd.Series(column_values, dtype=object), utc=True, format="ISO8601")
        elif isinstance(column.type, Integer):
            data[column.name] = _exact_integers(column_values)
        elif isinstance(column.type, Float):
            data[column.name] = np.array(column_values, dtype=np.float64)
        else:
            data[column.name] = pd.Series(column_values, dtype=object)
    return pd.DataFrame(data)


def _exact_integers(values: Sequence[int]) -> np.ndarray:
    """Return stored integers as int64, or as exact Python ints when their sum would not fit int64 (so that
    a report summing them can never wrap)."""
    array = np.array(values, dtype=np.int64)
    if np.abs(array.astype(float)).sum() >= LARGEST_TOTAL:
        return np.array([int(v) for v in values], dtype=object)
    return array
