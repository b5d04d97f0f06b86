"""Exact money: costs are integer nano-dollars inside, decimal dollars at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

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


@cache
def per_token_nanos(price_per_1k: float) -> Decimal:
    """Return a per-1k-token dollar price as exact nano-dollars per token."""
    # A per-1k price in dollars is the per-token price in micro-dollars, i.e.
    # price * 10**6 nano-dollars per token; Decimal(str()) keeps the price as written.
    return Decimal(str(price_per_1k)) * 10**6


def request_cost_nanos(
    input_tokens: int,
    output_tokens: int,
    price_in_per_1k: float,
    price_out_per_1k: float,
    *,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    price_cache_read_per_1k: float | None = None,
    price_cache_write_per_1k: float | None = None,
) -> int:
    """Return the cost of a request in nano-dollars from per-1k-token dollar prices.

    input_tokens counts the cached ones too (as OpenTelemetry GenAI and the price catalog do): those are
    priced at the cache prices, where given, and the rest at the input price.
    """
    per_in = per_token_nanos(price_in_per_1k)
    per_read = per_in if price_cache_read_per_1k is None else per_token_nanos(price_cache_read_per_1k)
    per_write = per_in if price_cache_write_per_1k is None else per_token_nanos(price_cache_write_per_1k)
    uncached = input_tokens - cache_read_tokens - cache_write_tokens
    total = (
        per_in * uncached
        + per_read * cache_read_tokens
        + per_write * cache_write_tokens
        + per_token_nanos(price_out_per_1k) * output_tokens
    )
    return int(total.to_integral_value(rounding=ROUND_HALF_EVEN))
