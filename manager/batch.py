"""Validating a batch of request records at once (numpy/pandas), with the per-row rules as the final word.

The vectorised pass accepts only rows it can judge exactly as `records.validate_record` would; every
other row goes to `validate_record` itself, so a batch is accepted or refused exactly as row by row,
only faster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manager.money import per_token_nanos
from manager.records import (
    ALIASES,
    EARLIEST,
    LATEST,
    MAX_COST_USD,
    MAX_LATENCY_MS,
    MAX_TOKENS,
    REQUEST_TYPES,
    UNKNOWN_LANGUAGE,
    LogRow,
    Prices,
    RowError,
    canonical,
    validate_record,
)

COLUMNS = list(LogRow._fields)
_ISO = r"^(?:197[1-9]|19[89]\d|20\d\d|21[0-8]\d)-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:\d\d)?$"
_DECIMAL = r"^(\d{1,5})(?:\.(\d{1,9}))?$"  # under $100,000: larger costs take the per-row path
_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")
MAX_COST_NANOS = int(MAX_COST_USD) * 10**9
# Prices up to $1,000 per 1k tokens are 10**9 nano-dollars per token: times MAX_TOKENS, the four parts of a
# cost stay far inside int64. Dearer prices take the per-row path, in exact decimals.
MAX_VECTOR_RATE = 10**9


def _text(frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """Return (stripped text, blank mask) of a column, as records.py reads text."""
    if column not in frame:
        empty = pd.Series([""] * len(frame), index=frame.index, dtype=object)
        return empty, pd.Series(True, index=frame.index)
    raw = frame[column]
    missing = raw.isna()
    text = raw.where(~missing, "").astype(str).str.strip()
    return text, missing | (text == "")


def _is_bool(series: pd.Series) -> pd.Series:
    if series.dtype == bool:
        return pd.Series(True, index=series.index)
    if series.dtype != object:
        return pd.Series(False, index=series.index)
    return series.map(lambda v: v is True or v is False).astype(bool)


def _numbers(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, pd.Series, pd.Series]:
    """Return (values, blank mask, clean mask): clean means blank, or a finite number read as float() would."""
    if column in frame and frame[column].dtype.kind in "iuf":
        # Already numbers (a typed frame): nothing to read as text.
        values = frame[column].to_numpy(dtype=float, na_value=np.nan)
        blank = pd.Series(np.isnan(values), index=frame.index)
        return values, blank, blank | np.isfinite(values)
    text, blank = _text(frame, column)
    if column not in frame:
        return np.full(len(frame), np.nan), blank, pd.Series(True, index=frame.index)
    raw = frame[column]
    values = pd.to_numeric(raw.where(~blank, np.nan), errors="coerce").astype(float).to_numpy()
    clean = blank | (np.isfinite(values) & ~_is_bool(raw))
    return values, blank, clean


def _rates(prices: Mapping[str, Prices]) -> dict[str, tuple[int, int, int, int]]:
    """Return integral nano-dollars per input, output, cache-read and cache-write token, for each model whose
    prices allow exact integer arithmetic."""
    rates = {}
    for model_id, p in prices.items():
        if p.cost_per_1k_input is None or p.cost_per_1k_output is None:
            continue
        rate_in = per_token_nanos(p.cost_per_1k_input)
        found = (
            rate_in,
            per_token_nanos(p.cost_per_1k_output),
            rate_in if p.cost_per_1k_cache_read is None else per_token_nanos(p.cost_per_1k_cache_read),
            rate_in if p.cost_per_1k_cache_write is None else per_token_nanos(p.cost_per_1k_cache_write),
        )
        if all(rate == rate.to_integral_value() and rate <= MAX_VECTOR_RATE for rate in found):
            rates[model_id] = (int(found[0]), int(found[1]), int(found[2]), int(found[3]))
    return rates


def _canonical_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a frame with aliased columns under their own names, as records.canonical does per record."""
    present = [alias for alias in ALIASES if alias in frame]
    if not present:
        return frame
    frame = frame.copy()
    for alias in present:
        name = ALIASES[alias]
        if name in frame:
            frame[name] = frame[name].where(~_text(frame, name)[1], frame[alias])
            frame = frame.drop(columns=alias)
        else:
            frame = frame.rename(columns={alias: name})
    return frame


def _record_at(
    frame: pd.DataFrame, records: Sequence[Mapping[str, Any]] | pd.DataFrame, position: int
) -> Mapping[str, Any]:
    if isinstance(records, pd.DataFrame):
        return {k: (None if _missing(v) else v) for k, v in frame.iloc[position].to_dict().items()}
    return canonical(records[position])


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def validate_batch(
    records: Sequence[Mapping[str, Any]] | pd.DataFrame, lines: Sequence[int], prices: Mapping[str, Prices]
) -> tuple[pd.DataFrame, list[tuple[int, RowError]]]:
    """Return the valid rows as a frame with LogRow's columns (in input order) and (line, error) for the rest."""
    frame = _canonical_frame(
        records.reset_index(drop=True)
        if isinstance(records, pd.DataFrame)
        else pd.DataFrame(list(records))  # from_records would drop a batch of empty records
    )
    frame.index = pd.RangeIndex(len(frame))
    n = len(frame)
    if n == 0:
        return pd.DataFrame(columns=COLUMNS), []
    good = pd.Series(True, index=frame.index)

    model, blank = _text(frame, "model_id")
    good &= ~blank & model.isin(list(prices))

    stamps = frame["timestamp"] if "timestamp" in frame else pd.Series([None] * n)
    if isinstance(stamps.dtype, pd.DatetimeTZDtype) or stamps.dtype.kind == "M":
        timestamp = pd.to_datetime(stamps, utc=True).dt.floor("us")  # Python datetimes hold microseconds
        good &= timestamp.notna() & (timestamp >= EARLIEST) & (timestamp < LATEST)
    else:
        text, blank = _text(frame, "timestamp")
        strict = ~blank & text.str.match(_ISO)
        timestamp = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
        if strict.any():
            timestamp[strict] = pd.to_datetime(text[strict], utc=True, format="ISO8601", errors="coerce")
        good &= strict & timestamp.notna()

    request_type, blank = _text(frame, "request_type")
    request_type = request_type.str.lower().where(~blank, "general")
    good &= request_type.isin(list(REQUEST_TYPES))
    language, blank = _text(frame, "language")
    language = language.str.lower().where(~blank, UNKNOWN_LANGUAGE)
    good &= language.str.len() <= 16

    tokens_in, blank_in, clean_in = _numbers(frame, "input_tokens")
    tokens_out, blank_out, clean_out = _numbers(frame, "output_tokens")
    good &= clean_in & clean_out
    counts = {}
    for column in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        values, blank, clean = _numbers(frame, column)
        good &= clean
        counts[column] = np.nan_to_num(np.where(blank, 0.0, values), nan=-1.0, posinf=-1.0, neginf=-1.0)
    # Rows that an unsplit total or the original design's error_count describe take the per-row rules.
    for column in ("tokens_used", "error_count"):
        good &= _text(frame, column)[1]
    no_usage = (blank_in & blank_out).to_numpy()
    tokens_in = np.nan_to_num(np.where(blank_in, 0.0, tokens_in), nan=-1.0, posinf=-1.0, neginf=-1.0)
    tokens_out = np.nan_to_num(np.where(blank_out, 0.0, tokens_out), nan=-1.0, posinf=-1.0, neginf=-1.0)
    for values in (tokens_in, tokens_out, *counts.values()):
        with np.errstate(invalid="ignore"):
            good &= (values >= 0) & (values == np.floor(values)) & (values <= MAX_TOKENS)
    cache_read, cache_write, reasoning = counts.values()
    with np.errstate(invalid="ignore"):
        good &= (cache_read + cache_write <= tokens_in) & (reasoning <= tokens_out)

    latency, blank, clean = _numbers(frame, "response_time_ms")
    with np.errstate(invalid="ignore"):
        good &= ~blank & clean & (latency >= 0) & (latency <= MAX_LATENCY_MS)

    rating, blank_rating, clean = _numbers(frame, "quality_rating")
    with np.errstate(invalid="ignore"):
        good &= clean & (blank_rating | ((rating >= 0) & (rating <= 5)))

    error_type, blank_error = _text(frame, "error_type")
    good &= (error_type.str.len() <= 128) & ~error_type.str.startswith("<class ")
    request_id, blank_id = _text(frame, "request_id")
    good &= request_id.str.len() <= 128

    success_raw = frame["success"] if "success" in frame else pd.Series([None] * n)
    success_text, blank_success = _text(frame, "success")
    flags = _is_bool(success_raw)
    lowered = success_text.str.lower()
    success = pd.Series(np.where(blank_success, blank_error, lowered.isin(_TRUE)), index=frame.index)
    if flags.any():
        success[flags] = success_raw[flags].astype(bool)
    good &= blank_success | flags | lowered.isin(_TRUE + _FALSE)

    usage_known = ~no_usage | ~success.to_numpy(dtype=bool)
    cost_text, blank_cost = _text(frame, "cost")
    parts = cost_text.str.extract(_DECIMAL)
    given = ~blank_cost & parts[0].notna()
    nanos = np.zeros(n, dtype=np.int64)
    if given.any():
        whole = parts[0][given].astype(np.int64).to_numpy()
        fraction = parts[1][given].fillna("").str.ljust(9, "0").replace("", "0").astype(np.int64).to_numpy()
        nanos[given.to_numpy()] = whole * 10**9 + fraction
    rates = _rates(prices)
    free = (tokens_in == 0) & (tokens_out == 0)  # nothing to price, priced or not
    computed = blank_cost & usage_known & (model.isin(list(rates)) | free)
    if computed.any():
        mask = computed.to_numpy()
        # One pass to number the models, then each rate is an array lookup (a free model's rates are 0).
        codes, names = pd.factorize(model[computed])
        table = np.array([rates.get(name, (0, 0, 0, 0)) for name in names], dtype=np.int64).reshape(-1, 4)
        rate = {part: table[codes, i] for i, part in enumerate(("in", "out", "read", "write"))}

        def counted(values: np.ndarray) -> np.ndarray:
            return np.clip(values[mask], 0, MAX_TOKENS).astype(np.int64)

        read, write = counted(cache_read), counted(cache_write)
        nanos[mask] = (
            (counted(tokens_in) - read - write) * rate["in"]
            + read * rate["read"]
            + write * rate["write"]
            + counted(tokens_out) * rate["out"]
        )
    unknown_cost = blank_cost & ~usage_known
    good &= given | computed | unknown_cost
    good &= nanos < MAX_COST_NANOS

    def token_counts(values: np.ndarray) -> np.ndarray:
        return np.clip(values, 0, MAX_TOKENS).astype(np.int64)

    rows = pd.DataFrame(
        {
            "request_id": request_id.where(~blank_id, None),
            "timestamp": timestamp,
            "model_id": model,
            "request_type": request_type,
            "language": language,
            "input_tokens": token_counts(tokens_in),
            "output_tokens": token_counts(tokens_out),
            "cache_read_tokens": token_counts(cache_read),
            "cache_write_tokens": token_counts(cache_write),
            "reasoning_tokens": token_counts(reasoning),
            "usage_known": usage_known,
            "response_time_ms": latency,
            "cost_nanos": nanos,
            "cost_known": ~unknown_cost.to_numpy(),
            "quality_rating": np.where(blank_rating, np.nan, rating),
            "success": success.astype(bool),
            "error_type": error_type.where(~blank_error, None),
        }
    )[good.to_numpy()]
    errors: list[tuple[int, RowError]] = []
    extra: list[tuple[int, LogRow]] = []
    for position in np.flatnonzero(~good.to_numpy()):
        try:
            extra.append((int(position), validate_record(_record_at(frame, records, int(position)), prices)))
        except RowError as error:
            errors.append((lines[int(position)], error))
    if extra:
        slow = pd.DataFrame([row for _, row in extra], columns=COLUMNS, index=[p for p, _ in extra])
        slow["timestamp"] = pd.to_datetime(slow["timestamp"], utc=True)
        rows = pd.concat([rows, slow]).sort_index()
    return rows.reset_index(drop=True), errors
