"""The vectorised batch pass judges every record exactly as the per-record rules do."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from manager.ledger.validate import COLUMNS, LogRow, Prices, RowError, validate_batch, validate_record

PRICES = {
    "deepseek-chat": Prices(0.00027, 0.0011, 0.00007, None),
    "claude-3-haiku-20240307": Prices(0.00025, 0.00125, 0.00003, 0.0003),
    "odd-price": Prices(0.000123456789, 0.001),
    "mystery": Prices(None, None),
}
COUNT = st.sampled_from(["", "0", "5", "120", "1000", "2000.0", "-3", "7.5", "abc", None, 40, 3000])
CELLS: dict[str, st.SearchStrategy[Any]] = {
    "request_id": st.sampled_from(["", "a", "b", None]),
    "timestamp": st.sampled_from(["2026-03-01T10:15:00Z", "2026-03-01 10:15:00+02:00", "yesterday", ""]),
    "model_id": st.sampled_from(list(PRICES) + ["gpt-9", ""]),
    "request_type": st.sampled_from(["", "translation", "Grammar", "poetry"]),
    "language": st.sampled_from(["", "es", "EN"]),
    "input_tokens": COUNT,
    "output_tokens": COUNT,
    "cache_read_tokens": COUNT,
    "cache_write_tokens": COUNT,
    "reasoning_tokens": COUNT,
    "tokens_used": st.sampled_from(["", "300", None]),
    "error_count": st.sampled_from(["", "0", "2", None]),
    "response_time_ms": st.sampled_from(["820.5", "0", "", "-1", "NaN"]),
    "cost": st.sampled_from(["", "0.25", "0", "1e-3", "-1", "abc"]),
    "cost_usd": st.sampled_from(["", "0.5"]),
    "quality_rating": st.sampled_from(["", "4.5", "9"]),
    "success": st.sampled_from(["", "true", "False", "0", "maybe", True, False]),
    "error_type": st.sampled_from(["", "429", "<class 'openai.RateLimitError'>", "timeout"]),
}
RECORDS = st.lists(st.fixed_dictionaries({}, optional=CELLS), min_size=1, max_size=30)


def _one_by_one(records: list[dict[str, Any]]) -> tuple[list[LogRow], list[tuple[int, str, str]]]:
    rows, errors = [], []
    for line, record in enumerate(records):
        try:
            rows.append(validate_record(record, PRICES))
        except RowError as error:
            errors.append((line, error.column, error.reason))
    return rows, errors


@settings(max_examples=300, deadline=None)
@given(RECORDS)
def test_a_batch_is_judged_exactly_as_record_by_record(records: list[dict[str, Any]]) -> None:
    frame, errors = validate_batch(records, range(len(records)), PRICES)
    rows, row_errors = _one_by_one(records)
    assert [(line, e.column, e.reason) for line, e in errors] == row_errors
    expected = pd.DataFrame(rows, columns=COLUMNS)
    got = [tuple(None if pd.isna(v) else v for v in r) for r in frame[COLUMNS].itertuples(index=False)]
    want = [
        tuple(None if v is None or (isinstance(v, float) and v != v) else v for v in r)
        for r in expected.itertuples(index=False)
    ]
    assert [_comparable(r) for r in got] == [_comparable(r) for r in want]


def _comparable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(pd.Timestamp(v).isoformat() if hasattr(v, "tzinfo") and v is not None else v for v in row)
