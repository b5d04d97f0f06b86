"""Public list prices from the genai-prices bundled snapshot (its updater is never started)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import Usage, calc_price

# Providers that run on the team's own hardware: their requests cost nothing per token.
LOCAL_PROVIDERS = frozenset({"ollama", "local", "vllm", "llamacpp"})


@dataclass(frozen=True)
class CatalogPrice:
    """Dollars per 1k input, output, cache-read and cache-write tokens, as the public catalog lists them."""

    cost_per_1k_input: float
    cost_per_1k_output: float
    source: str
    cost_per_1k_cache_read: float | None = None
    cost_per_1k_cache_write: float | None = None


def catalog_price(model_id: str, provider: str) -> CatalogPrice | None:
    """Return the catalog price of a model, free for local providers, or None when unknown."""
    if provider.lower() in LOCAL_PROVIDERS:
        return CatalogPrice(0.0, 0.0, "local (free)")
    # Some providers discount off-peak hours; the registry keeps the standard price, so ask at noon UTC.
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    usage = Usage(input_tokens=1000, output_tokens=1000)
    try:
        per_1k = calc_price(usage, model_id, provider_id=provider.lower(), genai_request_timestamp=noon)
    except LookupError:
        try:
            per_1k = calc_price(usage, model_id, genai_request_timestamp=noon)
        except LookupError:
            return None
    # The catalog's per-million cache prices, when it lists them (None: cached input costs as much as input).
    price = per_1k.model_price
    cache_read, cache_write = price.cache_read_mtok, price.cache_write_mtok
    return CatalogPrice(
        float(per_1k.input_price),
        float(per_1k.output_price),
        f"genai-prices {per_1k.provider.id}/{per_1k.model.id}",
        _per_1k(cache_read),
        _per_1k(cache_write),
    )


def _per_1k(per_million: Any) -> float | None:
    """Return a flat per-million price as dollars per 1k tokens; None when absent or tiered."""
    if per_million is None or not isinstance(per_million, int | float | Decimal):
        return None
    return float(Decimal(per_million) / 1000)
