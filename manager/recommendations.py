"""Recommendations: what to demote, repair, replace, retire or re-price, each with its evidence and dollars.

A pure function of a Window and its performance report; every rule speaks only with enough evidence behind it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from manager.performance import performance_report
from manager.prices import catalog_price
from manager.registry import ModelInfo
from manager.window import Window

# Thresholds of the recommendations; a rule only speaks with enough evidence behind it.
LOW_RATING = 3.5
MIN_RATINGS = 20
HIGH_ERROR_RATE = 0.10
MIN_REQUESTS = 50
PRICE_TOLERANCE = 0.01


@dataclass(frozen=True)
class Recommendation:
    """Something to change, why, and the dollars it concerns over the window."""

    kind: str
    model_id: str
    action: str
    evidence: str
    usd_at_stake: float

    def as_dict(self) -> dict[str, Any]:
        """Return the recommendation as plain data."""
        return asdict(self)


def _cost_at(prices: ModelInfo, input_tokens: int, output_tokens: int) -> float | None:
    if prices.cost_per_1k_input is None or prices.cost_per_1k_output is None:
        return None
    return (input_tokens * prices.cost_per_1k_input + output_tokens * prices.cost_per_1k_output) / 1000


def recommendations(window: Window, report: pd.DataFrame | None = None) -> list[Recommendation]:
    """Return what to demote, repair, replace, retire or re-price, each with evidence; most money first.

    `report` is the window's performance report when the caller has it already.
    """
    report = performance_report(window) if report is None else report
    info = window.registry
    frame = window.daily()
    tokens = frame.groupby("model_id")[["input_tokens", "output_tokens"]].sum() if not frame.empty else None
    found: list[Recommendation] = []
    for r in report.to_dict("records"):
        model_id, cost = r["model_id"], r["cost_usd"]
        if r["ratings"] >= MIN_RATINGS and r["avg_quality_rating"] < LOW_RATING:
            found.append(
                Recommendation(
                    "low_rating",
                    model_id,
                    "demote: lower its priority or route its traffic elsewhere",
                    f"average rating {r['avg_quality_rating']:.2f} of 5 over {r['ratings']:,} ratings "
                    f"(threshold {LOW_RATING})",
                    cost,
                )
            )
        error_rate = 1 - r["success_rate"]
        if r["requests"] >= MIN_REQUESTS and error_rate >= HIGH_ERROR_RATE:
            found.append(
                Recommendation(
                    "high_error_rate",
                    model_id,
                    "set status to maintenance and investigate",
                    f"{error_rate:.1%} of {r['requests']:,} requests failed (threshold {HIGH_ERROR_RATE:.0%})",
                    cost * error_rate,
                )
            )
        if tokens is not None and model_id in info and r["ratings"] >= MIN_RATINGS:
            better = _cheaper_equivalent(r, report, info, tokens)
            if better is not None:
                found.append(better)
    active = set(report["model_id"])
    for model_id, model in info.items():
        if model.enabled and model_id not in active:
            found.append(
                Recommendation(
                    "no_traffic",
                    model_id,
                    "disable it or send it traffic",
                    "enabled, but no requests in the window",
                    0.0,
                )
            )
    found += _price_drift(info, tokens)
    return sorted(found, key=lambda rec: (-rec.usd_at_stake, rec.kind, rec.model_id))


def _cheaper_equivalent(
    row: dict[str, Any], report: pd.DataFrame, info: Mapping[str, ModelInfo], tokens: pd.DataFrame
) -> Recommendation | None:
    model_id = row["model_id"]
    used_in, used_out = int(tokens.loc[model_id, "input_tokens"]), int(tokens.loc[model_id, "output_tokens"])
    current = _cost_at(info[model_id], used_in, used_out)
    if current is None:
        return None
    best: tuple[float, str, float] | None = None
    for other in report.to_dict("records"):
        candidate = other["model_id"]
        if (
            candidate == model_id
            or candidate not in info
            or not info[candidate].enabled
            or info[candidate].category != info[model_id].category
            or other["ratings"] < MIN_RATINGS
            or other["avg_quality_rating"] < row["avg_quality_rating"]
        ):
            continue
        projected = _cost_at(info[candidate], used_in, used_out)
        if projected is not None and projected < current and (best is None or projected < best[0]):
            best = (projected, candidate, other["avg_quality_rating"])
    if best is None:
        return None
    projected, candidate, rating = best
    return Recommendation(
        "cheaper_equivalent",
        model_id,
        f"move its traffic to {candidate}",
        f"{candidate} is rated {rating:.2f} vs {row['avg_quality_rating']:.2f} in the same category "
        f"({info[model_id].category}) and would have cost ${projected:,.2f} instead of ${current:,.2f}",
        current - projected,
    )


def _price_drift(info: Mapping[str, ModelInfo], tokens: pd.DataFrame | None) -> list[Recommendation]:
    found = []
    for model_id, model in info.items():
        listed = catalog_price(model_id, model.provider)
        if listed is None or model.cost_per_1k_input is None or model.cost_per_1k_output is None:
            continue
        pairs = (
            (model.cost_per_1k_input, listed.cost_per_1k_input),
            (model.cost_per_1k_output, listed.cost_per_1k_output),
        )
        if all(abs(mine - theirs) <= PRICE_TOLERANCE * max(theirs, 1e-12) for mine, theirs in pairs):
            continue
        stake = 0.0
        if tokens is not None and model_id in tokens.index:
            used_in, used_out = int(tokens.loc[model_id, "input_tokens"]), int(tokens.loc[model_id, "output_tokens"])
            stake = abs(used_in * (pairs[0][0] - pairs[0][1]) + used_out * (pairs[1][0] - pairs[1][1])) / 1000
        found.append(
            Recommendation(
                "price_drift",
                model_id,
                "update the registry price to the catalog's",
                f"registry ${model.cost_per_1k_input:g}/${model.cost_per_1k_output:g} per 1k in/out; "
                f"catalog ${listed.cost_per_1k_input:g}/${listed.cost_per_1k_output:g} ({listed.source})",
                stake,
            )
        )
    return found
