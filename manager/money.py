"""Exact money: costs are integer nano-dollars inside, decimal dollars at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

NANOS_PER_USD = 10**9


def usd_to_nanos(usd: Decimal | str | float | int) -> int:
    """Return a dollar amount as integer nano-dollars (half-even rounding past 9 decimals)."""
    value = usd if isinstance(usd, Decimal) else Decimal(str(usd))
    return int((value * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def nanos_to_usd(nanos: int) -> Decimal:
    """Return nano-dollars as an exact Decimal number of dollars."""
    return Decimal(nanos).scaleb(-9).normalize() if nanos else Decimal(0)


def format_usd(nanos: int) -> str:
    """Return nano-dollars as a plain decimal string with no exponent, e.g. '12.5'."""
    text = format(Decimal(nanos).scaleb(-9), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def request_cost_nanos(input_tokens: int, output_tokens: int, price_in_per_1k: float, price_out_per_1k: float) -> int:
    """Return the cost of a request in nano-dollars from per-1k-token dollar prices."""
    # A per-1k price in dollars is the per-token price in micro-dollars, i.e.
    # price * 10**6 nano-dollars per token; Decimal(str()) keeps the price as written.
    per_in = Decimal(str(price_in_per_1k)) * 10**6
    per_out = Decimal(str(price_out_per_1k)) * 10**6
    total = per_in * input_tokens + per_out * output_tokens
    return int(total.to_integral_value(rounding=ROUND_HALF_EVEN))
