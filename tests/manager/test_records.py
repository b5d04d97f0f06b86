from datetime import UTC, datetime

import pytest

from manager.records import Prices, RowError, validate_record
from tests.utils.factories import record

PRICES = {"deepseek-chat": Prices(0.00027, 0.0011), "mystery": Prices(None, None)}


def reason(**overrides: object) -> tuple[str, str]:
    with pytest.raises(RowError) as caught:
        validate_record(record(**overrides), PRICES)
    return caught.value.column, caught.value.reason


@pytest.mark.parametrize(
    ("overrides", "column", "words"),
    [
        ({"model_id": ""}, "model_id", "missing"),
        ({"model_id": "gpt-9"}, "model_id", "not in the registry"),
        ({"input_tokens": "-5"}, "input_tokens", "negative"),
        ({"output_tokens": "12.5"}, "output_tokens", "not a whole number"),
        ({"timestamp": "yesterday"}, "timestamp", "not an ISO-8601"),
        ({"quality_rating": "7"}, "quality_rating", "out of range (allowed 0 to 5)"),
        ({"response_time_ms": "NaN"}, "response_time_ms", "not a finite number"),
        ({"response_time_ms": "fast"}, "response_time_ms", "not a number"),
        ({"response_time_ms": ""}, "response_time_ms", "missing"),
        ({"request_type": "poetry"}, "request_type", "not one of"),
        ({"success": "maybe"}, "success", "not true or false"),
        ({"cost": "-0.1"}, "cost", "negative"),
        ({"model_id": "mystery", "cost": ""}, "cost", "unpriced"),
    ],
)
def test_bad_rows_are_refused_naming_the_column(overrides: dict, column: str, words: str) -> None:
    found_column, found_reason = reason(**overrides)
    assert found_column == column
    assert words in found_reason


def test_timestamps_with_offsets_are_converted_to_utc() -> None:
    row = validate_record(record(timestamp="2026-03-01T12:00:00+02:00"), PRICES)
    assert row.timestamp == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_naive_timestamps_are_utc() -> None:
    row = validate_record(record(timestamp="2026-03-01 12:00:00"), PRICES)
    assert row.timestamp == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_cost_is_computed_from_registry_prices_when_absent() -> None:
    row = validate_record(record(cost="", input_tokens=1000, output_tokens=500), PRICES)
    assert row.cost_nanos == 820_000


def test_given_cost_is_kept_exactly() -> None:
    assert validate_record(record(cost="0.012345678"), PRICES).cost_nanos == 12_345_678


def test_unsplit_tokens_used_count_as_input() -> None:
    row = validate_record(record(input_tokens="", output_tokens="", tokens_used="900"), PRICES)
    assert (row.input_tokens, row.output_tokens) == (900, 0)


def test_an_error_type_without_success_means_failure() -> None:
    assert validate_record(record(success="", error_type="timeout"), PRICES).success is False
