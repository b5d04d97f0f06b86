"""Usage series, performance rankings, latency detail, recommendations and the system overview, from rollups."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from manager import histogram, registry
from manager.db import read_session
from manager.money import NANOS_PER_USD, format_usd
from manager.prices import catalog_price
from manager.reports import daily_rows, hourly_rows, usage_note
from manager.rollups import decode_counts, merge_counts
from manager.scoring import HIGHER_IS_BETTER, composite_scores, pareto_frontier

GRANULARITIES = {"hour": "h", "day": "D", "week": "W"}
DIMENSIONS = {"model": "model_id", "provider": "provider", "language": "language", "request type": "request_type"}
USAGE_MEASURES = [
    "requests",
    "successes",
    "failures",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "requests_without_usage",
    "requests_without_cost",
]
PERFORMANCE_COLUMNS = [
    "model_id",
    "provider",
    "category",
    "requests",
    "success_rate",
    "avg_response_time_ms",
    "p50_response_time_ms",
    "p90_response_time_ms",
    "p95_response_time_ms",
    "p99_response_time_ms",
    "avg_quality_rating",
    "ratings",
    "cost_usd",
    "cost_per_request_usd",
    "cost_per_1k_tokens_usd",
    "score",
    "rank",
]
EXPORT_PERFORMANCE_COLUMNS = [
    "model_id",
    "provider",
    "requests",
    "success_rate",
    "avg_response_time_ms",
    "p50_response_time_ms",
    "p90_response_time_ms",
    "p95_response_time_ms",
    "p99_response_time_ms",
    "avg_quality_rating",
    "cost_usd",
    "cost_per_request_usd",
    "rank",
]

# Thresholds of the recommendations; a rule only speaks with enough evidence behind it.
LOW_RATING = 3.5
MIN_RATINGS = 20
HIGH_ERROR_RATE = 0.10
MIN_REQUESTS = 50
PRICE_TOLERANCE = 0.01


@dataclass(frozen=True)
class Filters:
    """Which traffic to count; an empty tuple means all."""

    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    request_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """What the registry says about a model that analytics needs."""

    provider: str
    category: str
    enabled: bool
    status: str
    quality_score: float
    cost_per_1k_input: float | None
    cost_per_1k_output: float | None


def registry_info(engine: Engine) -> dict[str, ModelInfo]:
    """Return each registered model's provider, category, state and prices."""
    with read_session(engine) as session:
        return {
            m.model_id: ModelInfo(
                m.provider,
                str(m.category),
                m.enabled,
                str(m.status),
                m.quality_score,
                m.cost_per_1k_input,
                m.cost_per_1k_output,
            )
            for m in registry.list_models(session=session)
        }


def window(
    engine: Engine,
    start: date,
    end: date,
    filters: Filters = Filters(),
    *,
    grain: str = "day",
    by_segment: bool = False,
) -> pd.DataFrame:
    """Return the window's daily (or hourly) rollup rows with provider and category, filtered.

    The rows are per model (a few per period) unless the caller needs request types and languages
    (by_segment) or filters on them; then they are per (model, request type, language).
    """
    per_model = not (by_segment or filters.languages or filters.request_types)
    if grain == "day":
        frame = daily_rows(engine, start, end, per_model=per_model)
    else:
        frame = hourly_rows(engine, start, end, per_model=per_model)
    info = registry_info(engine)
    frame["provider"] = frame["model_id"].map(lambda m: info[m].provider if m in info else "unregistered")
    frame["category"] = frame["model_id"].map(lambda m: info[m].category if m in info else "unregistered")
    for column, wanted in (
        ("model_id", filters.models),
        ("provider", filters.providers),
        ("language", filters.languages),
        ("request_type", filters.request_types),
    ):
        if wanted:
            frame = frame[frame[column].isin(wanted)]
    return frame


def filter_options(engine: Engine, start: date, end: date) -> dict[str, list[str]]:
    """Return the values each filter can take in the window."""
    frame = window(engine, start, end, by_segment=True)
    return {
        "models": sorted(frame["model_id"].unique().tolist()),
        "providers": sorted(frame["provider"].unique().tolist()),
        "languages": sorted(frame["language"].unique().tolist()),
        "request_types": sorted(frame["request_type"].unique().tolist()),
    }


def _period(hours: pd.Series, granularity: str) -> pd.Series:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    naive = hours.dt.tz_localize(None)
    if granularity == "week":  # weeks start on Monday
        return naive.dt.to_period("W-SUN").dt.start_time
    return naive.dt.floor(GRANULARITIES[granularity])


def usage_series(
    engine: Engine,
    start: date,
    end: date,
    *,
    granularity: str = "day",
    group_by: str = "model",
    filters: Filters = Filters(),
) -> pd.DataFrame:
    """Return requests, outcomes, tokens and cost per period (UTC) and group."""
    if group_by not in DIMENSIONS:
        raise ValueError(f"group_by {group_by!r} is not one of {', '.join(DIMENSIONS)}")
    grain = "hour" if granularity == "hour" else "day"
    frame = window(engine, start, end, filters, grain=grain, by_segment=group_by in ("language", "request type"))
    columns = ["period", "group", *USAGE_MEASURES]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.assign(
        period=_period(frame["start"], granularity),
        group=frame[DIMENSIONS[group_by]],
        requests_without_usage=frame["usage_unknown"],
        requests_without_cost=frame["cost_unknown"],
    )
    summed = [name for name in USAGE_MEASURES if name != "cost_usd"]
    sums = frame.groupby(["period", "group"], as_index=False)[[*summed, "cost_nanos"]].sum()
    sums["cost_usd"] = sums["cost_nanos"] / NANOS_PER_USD
    return sums[columns].sort_values(["period", "group"], ignore_index=True)


def _merged_hist(texts: pd.Series) -> dict[int, int]:
    return histogram.merge_stored(texts)


def _histograms_by(frame: pd.DataFrame, keys: list[str]) -> dict[Any, dict[int, int]]:
    """Return the merged latency histogram of each distinct value of `keys`, in one pass over the rows."""
    grouped = frame.groupby(keys, sort=True)
    names = grouped.size().index
    merged = histogram.merge_by_group(grouped.ngroup().to_numpy(), frame["latency_hist"].tolist(), len(names))
    return {key: histogram.decode(stored) for key, stored in zip(names, merged, strict=True)}


def _per_request(nanos: int, requests: int) -> Decimal:
    return (Decimal(nanos) / Decimal(requests) / NANOS_PER_USD).quantize(Decimal("1e-9"), rounding=ROUND_HALF_EVEN)


def _plain(amount: Decimal) -> str:
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def performance_report(
    engine: Engine,
    start: date,
    end: date,
    *,
    filters: Filters = Filters(),
    rank_by: str = "score",
) -> pd.DataFrame:
    """Return the seed's performance report per model with a composite score, ranked (rank 1 is best)."""
    if rank_by not in HIGHER_IS_BETTER:
        raise ValueError(f"rank_by {rank_by!r} is not one of {', '.join(HIGHER_IS_BETTER)}")
    frame = window(engine, start, end, filters)
    if frame.empty:
        return pd.DataFrame(columns=PERFORMANCE_COLUMNS)
    info = registry_info(engine)
    rows: list[dict[str, Any]] = []
    for model_id, part in frame.groupby("model_id"):
        requests = int(part["requests"].sum())
        merged = _merged_hist(part["latency_hist"])
        ratings = int(part["quality_count"].sum())
        nanos = int(part["cost_nanos"].sum())
        tokens = int(part["input_tokens"].sum() + part["output_tokens"].sum())
        rows.append(
            {
                "model_id": model_id,
                "provider": part["provider"].iloc[0],
                "category": part["category"].iloc[0],
                "requests": requests,
                "success_rate": int(part["successes"].sum()) / requests,
                "avg_response_time_ms": float(part["latency_sum_ms"].sum()) / requests,
                **{f"p{q}_response_time_ms": histogram.quantile(merged, q / 100) for q in (50, 90, 95, 99)},
                "avg_quality_rating": float(part["quality_sum"].sum()) / ratings if ratings else None,
                "ratings": ratings,
                "cost_nanos": nanos,
                "cost_usd": nanos / NANOS_PER_USD,
                "cost_per_request_usd": float(_per_request(nanos, requests)),
                "cost_per_1k_tokens_usd": nanos / NANOS_PER_USD / tokens * 1000 if tokens else None,
            }
        )
    report = pd.DataFrame(rows)
    # Observed ratings (0..5) where there are some, else the registry's quality score (0..1).
    quality = [
        r / 5 if pd.notna(r) else (info[m].quality_score if m in info else None)
        for m, r in zip(report["model_id"], report["avg_quality_rating"], strict=True)
    ]
    report["score"] = composite_scores(
        quality,
        report["success_rate"].tolist(),
        report["p95_response_time_ms"].tolist(),
        report["cost_per_request_usd"].tolist(),
    )
    return rank(report, rank_by)


def rank(report: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return the report ordered best first by a metric, with `rank` 1 for the best (ties by model_id)."""
    ordered = report.sort_values(
        [by, "model_id"], ascending=[not HIGHER_IS_BETTER[by], True], na_position="last", ignore_index=True
    )
    ordered["rank"] = range(1, len(ordered) + 1)
    return ordered[[*PERFORMANCE_COLUMNS, "cost_nanos"]] if "cost_nanos" in ordered else ordered


def performance_export_rows(report: pd.DataFrame) -> list[list[Any]]:
    """Return the report as rows of EXPORT_PERFORMANCE_COLUMNS, money as exact decimals."""
    rows = []
    for r in report.to_dict("records"):
        rows.append(
            [
                r["model_id"],
                r["provider"],
                r["requests"],
                r["success_rate"],
                round(r["avg_response_time_ms"], 3),
                *(round(r[f"p{q}_response_time_ms"], 3) for q in (50, 90, 95, 99)),
                None if pd.isna(r["avg_quality_rating"]) else r["avg_quality_rating"],
                format_usd(int(r["cost_nanos"])),
                _plain(_per_request(int(r["cost_nanos"]), r["requests"])),
                r["rank"],
            ]
        )
    return rows


def latency_over_time(
    engine: Engine,
    start: date,
    end: date,
    *,
    granularity: str = "day",
    filters: Filters = Filters(),
) -> pd.DataFrame:
    """Return p50, p90, p95 and p99 latency (ms) per period and model."""
    frame = window(engine, start, end, filters, grain="hour" if granularity == "hour" else "day")
    columns = ["period", "model_id", "p50", "p90", "p95", "p99"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.assign(period=_period(frame["start"], granularity))
    rows = [
        [period, model_id, *(histogram.quantile(merged, q / 100) for q in (50, 90, 95, 99))]
        for (period, model_id), merged in _histograms_by(frame, ["period", "model_id"]).items()
    ]
    return pd.DataFrame(rows, columns=columns)


def latency_distribution(engine: Engine, start: date, end: date, model_id: str) -> pd.DataFrame:
    """Return a model's latency histogram: each bucket's bounds (ms) and request count."""
    frame = window(engine, start, end, Filters(models=(model_id,)))
    merged = _merged_hist(frame["latency_hist"]) if not frame.empty else {}
    rows = [(histogram.GAMMA ** (i - 1), histogram.GAMMA**i, n) for i, n in sorted(merged.items())]
    return pd.DataFrame(rows, columns=["from_ms", "to_ms", "requests"])


def errors_by_type(engine: Engine, start: date, end: date, model_id: str) -> pd.DataFrame:
    """Return a model's failed requests per error type, most frequent first."""
    frame = window(engine, start, end, Filters(models=(model_id,)))
    counts = merge_counts(decode_counts(t) for t in frame["error_types"]) if not frame.empty else {}
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.DataFrame(ordered, columns=["error_type", "requests"])


def frontier(report: pd.DataFrame) -> list[str]:
    """Return the models on the quality-versus-cost Pareto frontier (rated models only), cheapest first."""
    rated = report.dropna(subset=["avg_quality_rating"]).reset_index(drop=True)
    indices = pareto_frontier(rated["cost_per_request_usd"].tolist(), rated["avg_quality_rating"].tolist())
    return [str(rated.loc[i, "model_id"]) for i in indices]


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


def recommendations(engine: Engine, start: date, end: date) -> list[Recommendation]:
    """Return what to demote, repair, replace, retire or re-price, each with evidence; most money first."""
    report = performance_report(engine, start, end)
    info = registry_info(engine)
    frame = window(engine, start, end)
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
    row: dict[str, Any], report: pd.DataFrame, info: dict[str, ModelInfo], tokens: pd.DataFrame
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


def _price_drift(info: dict[str, ModelInfo], tokens: pd.DataFrame | None) -> list[Recommendation]:
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


@dataclass(frozen=True)
class SystemOverview:
    """Totals, breakdowns by provider and category, and the best performers of a window."""

    total_requests: int
    total_cost_usd: float
    success_rate: float | None
    by_provider: pd.DataFrame
    by_category: pd.DataFrame
    top_performers: pd.DataFrame
    recommendations: list[Recommendation] = field(default_factory=list)
    # Requests that reported no token usage, and those of them whose cost is unknown (not in total_cost_usd).
    requests_without_usage: int = 0
    requests_without_cost: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the overview as JSON-ready data."""
        return {
            "total_requests": self.total_requests,
            "total_cost_usd": self.total_cost_usd,
            "requests_without_usage": self.requests_without_usage,
            "requests_without_cost": self.requests_without_cost,
            "success_rate": self.success_rate,
            "by_provider": self.by_provider.to_dict("records"),
            "by_category": self.by_category.to_dict("records"),
            "top_performers": self.top_performers.to_dict("records"),
            "recommendations": [r.as_dict() for r in self.recommendations],
        }


def _breakdown(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    columns = [column, "requests", "success_rate", "cost_usd"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    sums = frame.groupby(column, as_index=False)[["requests", "successes", "cost_nanos"]].sum()
    sums["success_rate"] = sums["successes"] / sums["requests"]
    sums["cost_usd"] = sums["cost_nanos"] / NANOS_PER_USD
    return sums[columns].sort_values("cost_usd", ascending=False, ignore_index=True)


def system_overview(
    engine: Engine, start: date, end: date, *, top: int = 3, with_recommendations: bool = True
) -> SystemOverview:
    """Return the window's totals, provider and category breakdowns and top performers."""
    frame = window(engine, start, end)
    report = performance_report(engine, start, end)
    requests = int(frame["requests"].sum()) if not frame.empty else 0
    nanos = int(frame["cost_nanos"].sum()) if not frame.empty else 0
    return SystemOverview(
        total_requests=requests,
        total_cost_usd=float(Decimal(format_usd(nanos))),
        success_rate=int(frame["successes"].sum()) / requests if requests else None,
        by_provider=_breakdown(frame, "provider"),
        by_category=_breakdown(frame, "category"),
        top_performers=report.head(top)[
            [
                "rank",
                "model_id",
                "provider",
                "score",
                "success_rate",
                "p95_response_time_ms",
                "avg_quality_rating",
                "cost_per_request_usd",
            ]
        ],
        recommendations=recommendations(engine, start, end) if with_recommendations else [],
        requests_without_usage=int(frame["usage_unknown"].sum()) if not frame.empty else 0,
        requests_without_cost=int(frame["cost_unknown"].sum()) if not frame.empty else 0,
    )


def period_totals(series: pd.DataFrame) -> pd.DataFrame:
    """Return a usage series summed over its groups per period, with the running cost total."""
    totals = series.groupby("period", as_index=False)[USAGE_MEASURES].sum()
    totals["cumulative_cost_usd"] = totals["cost_usd"].cumsum()
    return totals


def series_usage_note(series: pd.DataFrame) -> str | None:
    """Return what a usage series leaves out because requests reported no token usage; None when nothing is."""
    return usage_note(
        int(series["requests"].sum()),
        int(series["requests_without_usage"].sum()),
        int(series["requests_without_cost"].sum()),
    )
