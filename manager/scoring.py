"""Pure scoring over plain numbers: composite performance scores, rank order, the Pareto frontier."""

from __future__ import annotations

import math
from collections.abc import Sequence

# How the composite performance score weighs its parts (they sum to 1).
COMPOSITE_WEIGHTS = {"quality": 0.35, "reliability": 0.30, "speed": 0.20, "cost": 0.15}


def describe_composite() -> str:
    """Return how the composite score is made, in words."""
    names = {"quality": "quality", "reliability": "success rate", "speed": "p95 speed", "cost": "cost per request"}
    return (
        "Composite score: "
        + ", ".join(f"{w:.0%} {names[k]}" for k, w in COMPOSITE_WEIGHTS.items())
        + f". Cost scores on a log scale: each tenfold price above the cheapest paid model costs "
        f"{1 / COST_DECADES:.0%} of its part, and a free model ties with the cheapest paid one."
    )


# Metrics a ranking can use, and whether a higher value is better.
HIGHER_IS_BETTER = {
    "score": True,
    "requests": True,
    "success_rate": True,
    "avg_quality_rating": True,
    "avg_response_time_ms": False,
    "p50_response_time_ms": False,
    "p90_response_time_ms": False,
    "p95_response_time_ms": False,
    "p99_response_time_ms": False,
    "cost_usd": False,
    "cost_per_request_usd": False,
    "cost_per_1k_tokens_usd": False,
}


def relative_to_best(values: Sequence[float | None], *, lower_is_better: bool) -> list[float]:
    """Return each value scored 0..1 against the best of them (missing values score 0)."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return [0.0 for _ in values]
    if lower_is_better:
        best = min(present)
        return [0.0 if v is None else (1.0 if v <= best or v == 0 else best / v) for v in values]
    best = max(present)
    return [0.0 if v is None or best <= 0 else v / best for v in values]


# A model ten times the price of the cheapest loses this share of the cost factor; a thousand times, all of it.
COST_DECADES = 3.0


def cost_scores(prices: Sequence[float | None]) -> list[float]:
    """Return each price (per request or per 1k tokens) scored 0..1 on a log scale above the cheapest paid one.

    The cheapest paid price and anything below it (a free model) score 1; each tenfold step above it costs
    1/COST_DECADES. A free model therefore never zeroes every paid one, as a price ratio to $0 would; it
    ties with the cheapest paid model. An unknown price scores 0.
    """
    paid = [p for p in prices if p is not None and math.isfinite(p) and p > 0]
    cheapest = min(paid, default=None)
    scores = []
    for price in prices:
        if price is None or not math.isfinite(price):
            scores.append(0.0)
        elif cheapest is None or price <= cheapest:
            scores.append(1.0)
        else:
            scores.append(max(0.0, 1.0 - math.log10(price / cheapest) / COST_DECADES))
    return scores


def composite_scores(
    quality: Sequence[float | None],
    success_rate: Sequence[float | None],
    p95_ms: Sequence[float | None],
    cost_per_request: Sequence[float | None],
) -> list[float]:
    """Return each model's composite score in [0, 1]: quality (0..1), reliability, speed and cost."""
    speed = relative_to_best(p95_ms, lower_is_better=True)
    cost = cost_scores(cost_per_request)
    scores = []
    for q, r, s, c in zip(quality, success_rate, speed, cost, strict=True):
        scores.append(
            COMPOSITE_WEIGHTS["quality"] * (q or 0.0)
            + COMPOSITE_WEIGHTS["reliability"] * (r or 0.0)
            + COMPOSITE_WEIGHTS["speed"] * s
            + COMPOSITE_WEIGHTS["cost"] * c
        )
    return scores


def pareto_frontier(costs: Sequence[float], qualities: Sequence[float]) -> list[int]:
    """Return the indices of points no other point beats on both cost (lower) and quality (higher), by cost."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -qualities[i]))
    frontier: list[int] = []
    best_quality = -math.inf
    for i in order:
        if qualities[i] > best_quality:
            frontier.append(i)
            best_quality = qualities[i]
    return frontier
