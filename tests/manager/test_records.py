from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from manager.ledger.validate import LogRow, Prices, RowError, validate_record
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


def valid(**overrides: object) -> LogRow:
    return validate_record(record(**overrides), PRICES)


def test_a_success_without_usage_has_tokens_and_cost_unknown() -> None:
    row = valid(input_tokens="", output_tokens="", cost="")
    assert (row.usage_known, row.cost_known, row.success) == (False, False, True)


def test_a_success_without_usage_keeps_a_stated_cost() -> None:
    row = valid(input_tokens="", output_tokens="", cost="0.25")
    assert (row.usage_known, row.cost_known, row.cost_nanos) == (False, True, 250_000_000)


def test_a_failure_without_usage_billed_nothing_even_when_unpriced() -> None:
    row = valid(model_id="mystery", input_tokens="", output_tokens="", cost="", success="false", error_type="500")
    assert (row.usage_known, row.cost_known, row.input_tokens, row.cost_nanos) == (True, True, 0, 0)


@pytest.mark.parametrize(("count", "success"), [("1", False), ("3", False), ("0", True)])
def test_the_original_designs_error_count_marks_failures(count: str, success: bool) -> None:
    row = validate_record(
        {
            "timestamp": "2026-03-01T10:00:00",
            "model_id": "deepseek-chat",
            "tokens_used": "120",
            "response_time_ms": "900",
            "cost": "0.01",
            "quality_rating": "4",
            "error_count": count,
        },
        PRICES,
    )
    assert row.success is success


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("<class 'openai.RateLimitError'>", "RateLimitError"),
        ("<class 'TimeoutError'>", "TimeoutError"),
        ("OverloadedError", "OverloadedError"),
        ("429", "429"),
    ],
)
def test_error_types_are_stored_as_people_search_for_them(given: str, stored: str) -> None:
    assert valid(success="false", error_type=given).error_type == stored


def test_cached_input_is_priced_at_the_catalogs_cache_prices() -> None:
    prices = {"claude-3-haiku-20240307": Prices(0.00025, 0.00125, 0.00003, 0.0003)}
    row = validate_record(
        record(
            model_id="claude-3-haiku-20240307",
            input_tokens=10_000,
            output_tokens=700,
            cache_read_tokens=6000,
            cache_write_tokens=2000,
        ),
        prices,
    )
    usage = Usage(input_tokens=10_000, output_tokens=700, cache_read_tokens=6000, cache_write_tokens=2000)
    catalog = calc_price(usage, "claude-3-haiku-20240307", provider_id="anthropic").total_price
    assert Decimal(row.cost_nanos) / 10**9 == catalog


def test_cached_input_without_a_cache_price_costs_what_input_does() -> None:
    row = valid(input_tokens=1000, output_tokens=0, cache_read_tokens=400)
    assert row.cost_nanos == valid(input_tokens=1000, output_tokens=0).cost_nanos


@pytest.mark.parametrize(
    ("overrides", "column", "words"),
    [
        (
            {"input_tokens": 100, "cache_read_tokens": 80, "cache_write_tokens": 30},
            "cache_read_tokens",
            "exceed input_tokens",
        ),
        ({"output_tokens": 10, "reasoning_tokens": 11}, "reasoning_tokens", "exceeds output_tokens"),
        ({"input_tokens": "", "output_tokens": "", "cache_read_tokens": 5}, "input_tokens", "missing while"),
    ],
)
def test_cache_and_reasoning_counts_must_fit_inside_the_totals(overrides: dict, column: str, words: str) -> None:
    found_column, found_reason = reason(**overrides)
    assert (found_column, words in found_reason) == (column, True)


def test_the_log_exports_cost_usd_column_is_read_as_the_cost() -> None:
    row = validate_record({**record(cost=""), "cost_usd": "0.5"}, PRICES)
    assert row.cost_nanos == 500_000_000


@pytest.mark.parametrize(
    ("overrides", "column", "words"),
    [
        ({"input_tokens": "9007199254740991"}, "input_tokens", "more than 1,000,000,000"),
        ({"output_tokens": 1_000_000_001}, "output_tokens", "more than 1,000,000,000"),
        ({"response_time_ms": "1e308"}, "response_time_ms", "allowed 0 to 86,400,000"),
    ],
)
def test_counts_and_latencies_no_request_could_have_are_refused(overrides: dict, column: str, words: str) -> None:
    found_column, found_reason = reason(**overrides)
    assert (found_column, words in found_reason) == (column, True)


def test_a_computed_cost_over_a_million_dollars_is_refused() -> None:
    with pytest.raises(RowError) as caught:
        validate_record(record(input_tokens=10**9, output_tokens=10**9), {"deepseek-chat": Prices(1000, 1000)})
    assert caught.value.column == "cost"
    assert "over $1,000,000 for one request" in caught.value.reason
