"""Validating one request-log record: plain data in, a clean row or a reason out (no database)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from manager.models import ModelCategory
from manager.money import request_cost_nanos, usd_to_nanos

REQUEST_TYPES = frozenset(c.value for c in ModelCategory)
# Requests outside these years are typing mistakes, and beyond them some tools cannot hold a timestamp.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# No single request costs this much; a larger figure is a mistake (and would overflow the sums).
MAX_COST_USD = Decimal(1_000_000)
UNKNOWN_LANGUAGE = "unknown"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class LogRow(NamedTuple):
    """A validated request, ready to store."""

    request_id: str | None
    timestamp: datetime
    model_id: str
    request_type: str
    language: str
    input_tokens: int
    output_tokens: int
    response_time_ms: float
    cost_nanos: int
    quality_rating: float | None
    success: bool
    error_type: str | None


@dataclass(frozen=True)
class Prices:
    """A model's dollars per 1k input and output tokens; None when unpriced."""

    cost_per_1k_input: float | None
    cost_per_1k_output: float | None


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
    if isinstance(value, bool):
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
    if number >= 2**53:
        raise RowError(column, f"{record[column]!r} is too large")
    return int(number)


def _ranged(record: Mapping[str, Any], column: str, low: float, high: float | None) -> float | None:
    number = _number(record, column)
    if number is None:
        return None
    if number < low or (high is not None and number > high):
        allowed = f"{low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise RowError(column, f"{record[column]!r} is out of range (allowed {allowed})")
    return number


def _tokens(record: Mapping[str, Any]) -> tuple[int, int]:
    input_tokens = _count(record, "input_tokens")
    output_tokens = _count(record, "output_tokens")
    if input_tokens is None and output_tokens is None:
        # An unsplit total counts as input: the only split that never overstates output prices.
        total = _count(record, "tokens_used")
        if total is None:
            raise RowError("input_tokens", "missing (give input_tokens and output_tokens, or tokens_used)")
        return total, 0
    return input_tokens or 0, output_tokens or 0


def _cost(record: Mapping[str, Any], model_id: str, prices: Prices, tokens: tuple[int, int]) -> int:
    value = record.get("cost")
    if not _blank(value):
        try:
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
    if prices.cost_per_1k_input is None or prices.cost_per_1k_output is None:
        raise RowError("cost", f"empty, and model {model_id!r} is unpriced: set its prices or give the cost")
    return request_cost_nanos(tokens[0], tokens[1], prices.cost_per_1k_input, prices.cost_per_1k_output)


def _success(record: Mapping[str, Any], error_type: str | None) -> bool:
    value = record.get("success")
    if _blank(value):
        return error_type is None
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
    tokens = _tokens(record)
    latency = _ranged(record, "response_time_ms", 0, None)
    if latency is None:
        raise RowError("response_time_ms", "missing")
    error_type = _text(record, "error_type", max_length=128)
    return LogRow(
        request_id=_text(record, "request_id", max_length=128),
        timestamp=timestamp,
        model_id=model_id,
        request_type=request_type,
        language=language,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        response_time_ms=latency,
        cost_nanos=_cost(record, model_id, prices[model_id], tokens),
        quality_rating=_ranged(record, "quality_rating", 0, 5),
        success=_success(record, error_type),
        error_type=error_type,
    )
