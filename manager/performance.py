"""Performance: models ranked by a composite score, latency percentiles and histograms, errors by type.

Pure functions of a Window: the per-model rollup rows and the registry read once for the page.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pandas as pd

from manager.ledger import histogram
from manager.ledger.grains import decode_counts, merge_counts
from manager.money import NANOS_PER_USD, format_usd
from manager.scoring import HIGHER_IS_BETTER, composite_scores, pareto_frontier
from manager.usage import period_of
from manager.window import ALL_TRAFFIC, Filters, Window

# Rank, model and score first: what a ranking is read for, and what stays on screen.
PERFORMANCE_COLUMNS = [
    "rank",
    "model_id",
    "score",
    "requests",
    "success_rate",
    "p95_response_time_ms",
    "avg_quality_rating",
    "cost_per_request_usd",
    "cost_usd",
    "hosting_usd",
    "cost_basis",
    "provider",
    "category",
    "avg_response_time_ms",
    "p50_response_time_ms",
    "p90_response_time_ms",
    "p99_response_time_ms",
    "ratings",
    "cost_per_1k_tokens_usd",
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
    "hosting_usd",
    "cost_basis",
]


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


def performance_report(window: Window, *, filters: Filters = ALL_TRAFFIC, rank_by: str = "score") -> pd.DataFrame:
    """Return the seed's performance report per model with a composite score, ranked (rank 1 is best)."""
    if rank_by not in HIGHER_IS_BETTER:
        raise ValueError(f"rank_by {rank_by!r} is not one of {', '.join(HIGHER_IS_BETTER)}")
    frame = window.daily(filters)
    if frame.empty:
        return pd.DataFrame(columns=PERFORMANCE_COLUMNS)
    info = window.registry
    hosting = hosting_per_request_nanos(window)
    rows: list[dict[str, Any]] = []
    for model_id, part in frame.groupby("model_id"):
        requests = int(part["requests"].sum())
        merged = _merged_hist(part["latency_hist"])
        ratings = int(part["quality_count"].sum())
        billed = int(part["cost_nanos"].sum())
        hosted = round(hosting.get(str(model_id), 0.0) * requests)
        nanos = billed + hosted
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
                "cost_nanos": billed,
                "hosting_nanos": hosted,
                "cost_usd": billed / NANOS_PER_USD,
                "hosting_usd": hosted / NANOS_PER_USD if str(model_id) in hosting else None,
                "cost_basis": _basis(billed, str(model_id) in hosting),
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


def hosting_per_request_nanos(window: Window) -> dict[str, float]:
    """Return, for each model whose registry row has a host cost per hour, its host's cost over the window's
    hours spread over the model's requests in them (nano-dollars per request; the whole cost when it served
    none is not spread and counts as 0 per request)."""
    hours = window.hours_covered()
    hosted = {m: i.host_cost_per_hour for m, i in window.registry.items() if i.host_cost_per_hour}
    if not hosted:
        return {}
    frame = window.daily()
    served = frame.groupby("model_id")["requests"].sum().to_dict() if not frame.empty else {}
    return {
        model: (rate * hours * NANOS_PER_USD / int(served[model]) if served.get(model) else 0.0)
        for model, rate in hosted.items()
        if rate is not None
    }


def _basis(billed_nanos: int, hosted: bool) -> str:
    """Return what a model's cost is made of, as the UI says it."""
    if hosted:
        return "billed + hosting" if billed_nanos else "hosting estimate"
    return "billed"


def ranking_view(report: pd.DataFrame) -> pd.DataFrame:
    """Return the ranking as the page shows it: no internal nano-dollar columns, and the hosting columns only
    when some model carries a host cost."""
    shown = report.drop(columns=[c for c in ("cost_nanos", "hosting_nanos") if c in report])
    if "cost_basis" in shown and (shown["cost_basis"] == "billed").all():
        shown = shown.drop(columns=["hosting_usd", "cost_basis"])
    return shown


def rank(report: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return the report ordered best first by a metric, with `rank` 1 for the best (ties by model_id)."""
    ordered = report.sort_values(
        [by, "model_id"], ascending=[not HIGHER_IS_BETTER[by], True], na_position="last", ignore_index=True
    )
    ordered["rank"] = range(1, len(ordered) + 1)
    internal = [c for c in ("cost_nanos", "hosting_nanos") if c in ordered]
    return ordered[[*PERFORMANCE_COLUMNS, *internal]]


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
                _plain(_per_request(int(r["cost_nanos"]) + int(r["hosting_nanos"]), r["requests"])),
                r["rank"],
                None if pd.isna(r["hosting_usd"]) else format_usd(int(r["hosting_nanos"])),
                r["cost_basis"],
            ]
        )
    return rows


def latency_over_time(window: Window, *, granularity: str = "day", filters: Filters = ALL_TRAFFIC) -> pd.DataFrame:
    """Return p50, p90, p95 and p99 latency (ms) per period and model."""
    frame = window.hourly(filters) if granularity == "hour" else window.daily(filters)
    columns = ["period", "model_id", "p50", "p90", "p95", "p99"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.assign(period=period_of(frame["start"], granularity))
    rows = [
        [period, model_id, *(histogram.quantile(merged, q / 100) for q in (50, 90, 95, 99))]
        for (period, model_id), merged in _histograms_by(frame, ["period", "model_id"]).items()
    ]
    return pd.DataFrame(rows, columns=columns)


def latency_distribution(window: Window, model_id: str) -> pd.DataFrame:
    """Return a model's latency histogram: each bucket's bounds (ms) and request count."""
    frame = window.daily(Filters(models=(model_id,)))
    merged = _merged_hist(frame["latency_hist"]) if not frame.empty else {}
    rows = [(histogram.GAMMA ** (i - 1), histogram.GAMMA**i, n) for i, n in sorted(merged.items())]
    return pd.DataFrame(rows, columns=["from_ms", "to_ms", "requests"])


def errors_by_type(window: Window, model_id: str) -> pd.DataFrame:
    """Return a model's failed requests per error type, most frequent first."""
    frame = window.daily(Filters(models=(model_id,)))
    counts = merge_counts(decode_counts(t) for t in frame["error_types"]) if not frame.empty else {}
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.DataFrame(ordered, columns=["error_type", "requests"])


def frontier(report: pd.DataFrame) -> list[str]:
    """Return the models on the quality-versus-cost Pareto frontier (rated models only), cheapest first."""
    rated = report.dropna(subset=["avg_quality_rating"]).reset_index(drop=True)
    indices = pareto_frontier(rated["cost_per_request_usd"].tolist(), rated["avg_quality_rating"].tolist())
    return [str(rated.loc[i, "model_id"]) for i in indices]
