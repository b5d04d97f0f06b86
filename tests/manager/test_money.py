from decimal import Decimal

from manager.money import format_usd, nanos_to_usd, request_cost_nanos, usd_to_nanos


def test_request_cost_is_exact_in_nano_dollars() -> None:
    # 1000 input tokens at $0.00027/1k plus 500 output at $0.0011/1k = $0.00027 + $0.00055
    assert request_cost_nanos(1000, 500, 0.00027, 0.0011) == 820_000


def test_dollars_round_trip_through_nanos() -> None:
    assert nanos_to_usd(usd_to_nanos("0.000123456")) == Decimal("0.000123456")


def test_format_usd_never_uses_an_exponent() -> None:
    assert format_usd(5) == "0.000000005"
    assert format_usd(12_500_000_000) == "12.5"
    assert format_usd(0) == "0"
