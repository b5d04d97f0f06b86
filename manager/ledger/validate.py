"""Validating request records, one or a batch: plain data in, clean rows or a reason per row out (no database).

`validate_record` holds the rules. `validate_batch` applies them to a whole frame at once (numpy/pandas) but
accepts only rows it can judge exactly as `validate_record` would; every other row goes to `validate_record`
itself, so a batch is accepted or refused exactly as row by row, only faster.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from manager.ledger.attribution import COLUMNS as ATTRIBUTION
from manager.ledger.attribution import RECORD_COLUMNS as ATTRIBUTION_RECORD_COLUMNS
from manager.ledger.attribution import TAGS, AttributionError, attribution_of, clean_tags, clean_value
from manager.models import ModelCategory
from manager.money import format_usd, per_token_nanos, request_cost_nanos, usd_to_nanos

REQUEST_TYPES = frozenset(c.value for c in ModelCategory)
# Requests outside these years are typing mistakes, and beyond them some tools cannot hold a timestamp.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# No single request costs this much, uses this many tokens or takes this long; larger figures are mistakes.
MAX_COST_USD = Decimal(1_000_000)
MAX_TOKENS = 10**9
MAX_LATENCY_MS = 24 * 3600 * 1000
UNKNOWN_LANGUAGE = "unknown"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


# Other names the same columns go by: this product's own log export, and the providers' usage fields.
ALIASES = {
    "cost_usd": "cost",
    "end_user": "user",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_write_tokens",
}
# The request-record columns, in the order exports write them and ingest reads them.
RECORD_COLUMNS = (
    "request_id",
    "timestamp",
    "model_id",
    "request_type",
    "language",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "response_time_ms",
    "cost",
    "quality_rating",
    "success",
    "error_type",
    *ATTRIBUTION_RECORD_COLUMNS,
)
_CLASS_REPR = re.compile(r"^<class '(?:[\w.]*\.)?(\w+)'>$")


class LogRow(NamedTuple):
    """A validated request, ready to store.

    Token counts are 0 when usage_known is false (a successful request that reported no usage); cost_nanos is 0
    when cost_known is false (no usage and no stated cost). A failed request with no usage billed nothing: its
    usage is known, and zero.
    """

    request_id: str | None
    timestamp: datetime
    model_id: str
    request_type: str
    language: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    usage_known: bool
    response_time_ms: float
    cost_nanos: int
    cost_known: bool
    quality_rating: float | None
    success: bool
    error_type: str | None
    # Attribution (manager.ledger.attribution): cleaned, an API key that looks like a secret fingerprinted.
    end_user: str | None = None
    team: str | None = None
    api_key: str | None = None
    app: str | None = None
    environment: str | None = None
    tags: str | None = None


@dataclass(frozen=True)
class Prices:
    """A model's dollars per 1k input, output, cache-read and cache-write tokens; None when unpriced.

    A cache price of None means cached input costs what other input does.
    """

    cost_per_1k_input: float | None
    cost_per_1k_output: float | None
    cost_per_1k_cache_read: float | None = None
    cost_per_1k_cache_write: float | None = None


def canonical(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return a record with aliased column names (cost_usd, ...) under their own names; a filled own name wins."""
    if not any(alias in record for alias in ALIASES):
        return record
    renamed = dict(record)
    for alias, name in ALIASES.items():
        if alias in renamed:
            value = renamed.pop(alias)
            if _blank(renamed.get(name)):
                renamed[name] = value
    return renamed


def normalise_error_type(value: str | None) -> str | None:
    """Return an error type as people search for it: "<class 'openai.RateLimitError'>" becomes RateLimitError."""
    if value is None:
        return None
    found = _CLASS_REPR.match(value)
    return found.group(1) if found else value


class RowError(ValueError):
    """A record was refused; `column` names the field at fault."""

    def __init__(self, column: str, reason: str):
        super().__init__(f"column {column}: {reason}")
        self.column = column
        self.reason = reason


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _text(record: Mapping[str, Any], column: str, *, max_length: int) -> str | None:
    value = record.get(column)
    if _blank(value):
        return None
    text = str(value).strip()
    if len(text) > max_length:
        raise RowError(column, f"longer than {max_length} characters")
    return text


def parse_timestamp(value: Any) -> datetime:
    """Return a timezone-aware UTC datetime from ISO-8601 text (naive means UTC) or epoch seconds."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a timestamp")
        moment = datetime.fromtimestamp(value, UTC)
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _timestamp(record: Mapping[str, Any]) -> datetime:
    value = record.get("timestamp")
    if _blank(value):
        raise RowError("timestamp", "missing")
    try:
        moment = parse_timestamp(value)
    except (ValueError, OverflowError, OSError) as error:
        raise RowError("timestamp", str(error)) from None
    if not EARLIEST <= moment < LATEST:
        raise RowError("timestamp", f"{value!r} is outside {EARLIEST.year} to {LATEST.year - 1}")
    return moment


def _number(record: Mapping[str, Any], column: str) -> float | None:
    value: Any = record.get(column)
    if _blank(value):
        return None
    if isinstance(value, bool) or (isinstance(value, str) and "_" in value):  # float() reads "1_000" as 1000
        raise RowError(column, f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(column, f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise RowError(column, f"{value!r} is not a finite number")
    return number


def _count(record: Mapping[str, Any], column: str) -> int | None:
    number = _number(record, column)
    if number is None:
        return None
    if number < 0:
        raise RowError(column, f"{record[column]!r} is negative")
    if not number.is_integer():
        raise RowError(column, f"{record[column]!r} is not a whole number")
    if number > MAX_TOKENS:
        raise RowError(column, f"{record[column]!r} is more than {MAX_TOKENS:,} (no request uses that many)")
    return int(number)


def _shown(number: float) -> str:
    """Return a bound as people write it: 86,400,000 rather than 8.64e+07."""
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def _ranged(record: Mapping[str, Any], column: str, low: float, high: float | None) -> float | None:
    number = _number(record, column)
    if number is None:
        return None
    if number < low or (high is not None and number > high):
        allowed = f"{_shown(low)} to {_shown(high)}" if high is not None else f"at least {_shown(low)}"
        raise RowError(column, f"{record[column]!r} is out of range (allowed {allowed})")
    return number


class Usage(NamedTuple):
    """A request's token counts; known is false when the record reported none."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    known: bool


def _usage(record: Mapping[str, Any], success: bool) -> Usage:
    input_tokens = _count(record, "input_tokens")
    output_tokens = _count(record, "output_tokens")
    if input_tokens is None and output_tokens is None:
        # An unsplit total counts as input: the only split that never overstates output prices.
        input_tokens = _count(record, "tokens_used")
    cache_read = _count(record, "cache_read_tokens") or 0
    cache_write = _count(record, "cache_write_tokens") or 0
    reasoning = _count(record, "reasoning_tokens") or 0
    if input_tokens is None and output_tokens is None:
        if cache_read or cache_write or reasoning:
            raise RowError("input_tokens", "missing while cache or reasoning tokens are given")
        # No usage reported: a failure billed nothing; a success used tokens nobody counted.
        return Usage(0, 0, 0, 0, 0, known=not success)
    input_tokens, output_tokens = input_tokens or 0, output_tokens or 0
    if cache_read + cache_write > input_tokens:
        raise RowError(
            "cache_read_tokens",
            f"cache read {cache_read} and write {cache_write} exceed input_tokens {input_tokens} "
            "(input_tokens counts cached input too)",
        )
    if reasoning > output_tokens:
        raise RowError(
            "reasoning_tokens", f"{reasoning} exceeds output_tokens {output_tokens} (output_tokens counts them too)"
        )
    return Usage(input_tokens, output_tokens, cache_read, cache_write, reasoning, known=True)


def _stated_cost(record: Mapping[str, Any]) -> int | None:
    value = record.get("cost")
    if _blank(value):
        return None
    try:
        if "_" in str(value):  # Decimal() reads "1_000" as 1000
            raise InvalidOperation
        cost = Decimal(str(value).strip())
    except InvalidOperation:
        raise RowError("cost", f"{value!r} is not a number") from None
    if not cost.is_finite():
        raise RowError("cost", f"{value!r} is not a finite number")
    if cost < 0:
        raise RowError("cost", f"{value!r} is negative")
    if cost >= MAX_COST_USD:
        raise RowError("cost", f"{value!r} is too large (a request costs under ${MAX_COST_USD:,})")
    return usd_to_nanos(cost)


def _cost(record: Mapping[str, Any], model_id: str, prices: Prices, usage: Usage) -> int | None:
    """Return the stated or computed cost in nano-dollars; None when unknown (no usage, no stated cost)."""
    stated = _stated_cost(record)
    if stated is not None:
        return stated
    if not usage.known:
        return None
    if usage.input_tokens == 0 and usage.output_tokens == 0:
        return 0
    if prices.cost_per_1k_input is None or prices.cost_per_1k_output is None:
        raise RowError("cost", f"empty, and model {model_id!r} is unpriced: set its prices or give the cost")
    cost = request_cost_nanos(
        usage.input_tokens,
        usage.output_tokens,
        prices.cost_per_1k_input,
        prices.cost_per_1k_output,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        price_cache_read_per_1k=prices.cost_per_1k_cache_read,
        price_cache_write_per_1k=prices.cost_per_1k_cache_write,
    )
    if cost >= usd_to_nanos(MAX_COST_USD):
        raise RowError(
            "cost",
            f"the tokens at {model_id}'s prices come to ${format_usd(cost)}, over ${MAX_COST_USD:,} for one "
            "request: check the token counts and the model's prices",
        )
    return cost


def _failed_by_count(record: Mapping[str, Any]) -> bool | None:
    """Return whether the original design's error_count marks the request failed; None when absent."""
    count = _count(record, "error_count")
    return None if count is None else count > 0


def _success(record: Mapping[str, Any], error_type: str | None) -> bool:
    value = record.get("success")
    failed = _failed_by_count(record)
    if _blank(value):
        return error_type is None and not failed
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowError("success", f"{value!r} is not true or false")


def validate_record(record: Mapping[str, Any], prices: Mapping[str, Prices]) -> LogRow:
    """Return the clean row for one request record, or raise RowError naming the column at fault."""
    record = canonical(record)
    model_id = _text(record, "model_id", max_length=128)
    if model_id is None:
        raise RowError("model_id", "missing")
    if model_id not in prices:
        raise RowError("model_id", f"{model_id!r} is not in the registry")
    timestamp = _timestamp(record)
    request_type = (_text(record, "request_type", max_length=16) or "general").lower()
    if request_type not in REQUEST_TYPES:
        raise RowError("request_type", f"{request_type!r} is not one of {', '.join(sorted(REQUEST_TYPES))}")
    language = (_text(record, "language", max_length=16) or UNKNOWN_LANGUAGE).lower()
    latency = _ranged(record, "response_time_ms", 0, MAX_LATENCY_MS)
    if latency is None:
        raise RowError("response_time_ms", "missing")
    error_type = normalise_error_type(_text(record, "error_type", max_length=128))
    success = _success(record, error_type)
    usage = _usage(record, success)
    cost = _cost(record, model_id, prices[model_id], usage)
    try:
        attribution = attribution_of(record)
    except AttributionError as error:
        raise RowError(error.column, error.reason) from None
    return LogRow(
        request_id=_text(record, "request_id", max_length=128),
        timestamp=timestamp,
        model_id=model_id,
        request_type=request_type,
        language=language,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        usage_known=usage.known,
        response_time_ms=latency,
        cost_nanos=cost or 0,
        cost_known=cost is not None,
        quality_rating=_ranged(record, "quality_rating", 0, 5),
        success=success,
        error_type=error_type,
        **attribution,
    )


COLUMNS = list(LogRow._fields)


_ISO = r"^(?:197[1-9]|19[89]\d|20\d\d|21[0-8]\d)-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:\d\d)?$"


_DECIMAL = r"^(\d{1,5})(?:\.(\d{1,9}))?$"  # under $100,000: larger costs take the per-row path


MAX_COST_NANOS = int(MAX_COST_USD) * 10**9


# Prices up to $1,000 per 1k tokens are 10**9 nano-dollars per token: times MAX_TOKENS, the four parts of a
# cost stay far inside int64. Dearer prices take the per-row path, in exact decimals.
MAX_VECTOR_RATE = 10**9


def _texts(frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
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
    text, blank = _texts(frame, column)
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
            frame[name] = frame[name].where(~_texts(frame, name)[1], frame[alias])
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


def _attribution_columns(frame: pd.DataFrame) -> tuple[dict[str, pd.Series], pd.Series]:
    """Return each attribution column as stored, cleaned once per distinct value (values repeat: a few teams,
    apps and keys across many requests), and which rows were clean; a refused value takes the per-row path."""
    n = len(frame)
    clean = pd.Series(True, index=frame.index)
    columns: dict[str, pd.Series] = {}
    for column, stored in [*ATTRIBUTION.items(), (TAGS, TAGS)]:
        if column not in frame:
            columns[stored] = pd.Series([None] * n, index=frame.index, dtype=object)
            continue
        raw = frame[column].astype(object)
        present = raw.notna().to_numpy()
        if not present.any():  # a reader's column that no row filled
            columns[stored] = pd.Series([None] * n, index=frame.index, dtype=object)
            continue
        distinct: list[Any]
        try:  # text and numbers: each distinct value is its own key, cleaned once
            codes, found = pd.factorize(raw)
            distinct = list(found)
        except TypeError:  # lists or objects (JSON tags): keyed by their JSON text
            keys = raw.map(_hashable)
            codes, found = pd.factorize(keys)
            originals = dict(zip(keys.tolist(), raw.tolist(), strict=True))
            distinct = [originals[key] for key in found]
        cleaned = np.empty(len(distinct) + 1, dtype=object)  # the last slot: a missing value (code -1) stays None
        refused_codes = []
        for code, value in enumerate(distinct):
            try:
                cleaned[code] = clean_tags(value) if column == TAGS else clean_value(column, value)
            except AttributionError:
                refused_codes.append(code)
        refused = np.isin(codes, refused_codes) if refused_codes else np.zeros(n, dtype=bool)
        clean &= ~refused
        stored_codes = np.where(refused, -1, codes)
        columns[stored] = pd.Series(cleaned[stored_codes], index=frame.index, dtype=object)
    return columns, clean


def _hashable(value: Any) -> Any:
    """Return a value as a dictionary key: a missing one as None, a list or object as its JSON text."""
    if isinstance(value, list | dict):
        return "\0json" + json.dumps(value, sort_keys=True, default=str)
    return None if _missing(value) else value


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

    model, blank = _texts(frame, "model_id")
    good &= ~blank & model.isin(list(prices))

    stamps = frame["timestamp"] if "timestamp" in frame else pd.Series([None] * n)
    if isinstance(stamps.dtype, pd.DatetimeTZDtype) or stamps.dtype.kind == "M":
        timestamp = pd.to_datetime(stamps, utc=True).dt.floor("us")  # Python datetimes hold microseconds
        good &= timestamp.notna() & (timestamp >= EARLIEST) & (timestamp < LATEST)
    else:
        text, blank = _texts(frame, "timestamp")
        strict = ~blank & text.str.match(_ISO)
        timestamp = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
        if strict.any():
            timestamp[strict] = pd.to_datetime(text[strict], utc=True, format="ISO8601", errors="coerce")
        good &= strict & timestamp.notna()

    request_type, blank = _texts(frame, "request_type")
    request_type = request_type.str.lower().where(~blank, "general")
    good &= request_type.isin(list(REQUEST_TYPES))
    language, blank = _texts(frame, "language")
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
        good &= _texts(frame, column)[1]
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

    error_type, blank_error = _texts(frame, "error_type")
    good &= (error_type.str.len() <= 128) & ~error_type.str.startswith("<class ")
    request_id, blank_id = _texts(frame, "request_id")
    good &= request_id.str.len() <= 128

    success_raw = frame["success"] if "success" in frame else pd.Series([None] * n)
    success_text, blank_success = _texts(frame, "success")
    flags = _is_bool(success_raw)
    lowered = success_text.str.lower()
    success = pd.Series(np.where(blank_success, blank_error, lowered.isin(_TRUE)), index=frame.index)
    if flags.any():
        success[flags] = success_raw[flags].astype(bool)
    good &= blank_success | flags | lowered.isin(_TRUE | _FALSE)

    attribution, clean = _attribution_columns(frame)
    good &= clean

    usage_known = ~no_usage | ~success.to_numpy(dtype=bool)
    cost_text, blank_cost = _texts(frame, "cost")
    parts = cost_text[~blank_cost].str.extract(_DECIMAL)  # only stated costs: the regex runs per row
    given = pd.Series(False, index=frame.index)
    given[parts.index[parts[0].notna()]] = True
    nanos = np.zeros(n, dtype=np.int64)
    if given.any():
        stated = parts[parts[0].notna()]
        whole = stated[0].astype(np.int64).to_numpy()
        fraction = stated[1].fillna("").str.ljust(9, "0").replace("", "0").astype(np.int64).to_numpy()
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
            clipped: np.ndarray = np.clip(values[mask], 0, MAX_TOKENS).astype(np.int64)
            return clipped

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
        clipped: np.ndarray = np.clip(values, 0, MAX_TOKENS).astype(np.int64)
        return clipped

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
            **attribution,
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
