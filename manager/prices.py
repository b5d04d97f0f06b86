"""Public list prices from the genai-prices bundled snapshot (its updater is never started)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from genai_prices import Usage, calc_price

# Providers that run on the team's own hardware: their requests cost nothing per token.
LOCAL_PROVIDERS = frozenset({"ollama", "local", "vllm", "llamacpp"})


@dataclass(frozen=True)
class CatalogPrice:
    """Dollars per 1k input and output tokens, as the public catalog lists them."""

    cost_per_1k_input: float
    cost_per_1k_output: float
    source: str


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
    return CatalogPrice(
        float(per_1k.input_price),
        float(per_1k.output_price),
        f"genai-prices {per_1k.provider.id}/{per_1k.model.id}",
    )
