"""Validating one request-log record: plain data in, a clean row or a reason out (no database)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from manager.models import ModelCategory
from manager.money import format_usd, request_cost_nanos, usd_to_nanos

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
    )
