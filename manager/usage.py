"""Usage: headline figures, cost per day, per-model summaries and usage series, pure functions of a Window."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from manager.ledger import histogram
from manager.money import NANOS_PER_USD, format_usd
from manager.window import ALL_TRAFFIC, UNREGISTERED, Filters, Reads, Window

GRANULARITIES = {"hour": "h", "day": "D", "week": "W"}
DIMENSIONS = {"model": "model_id", "provider": "provider", "language": "language", "request type": "request_type"}
SEGMENT_DIMENSIONS = ("language", "request type")
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
USAGE_COLUMNS = [
    "date",
    "model_id",
    "provider",
    "requests",
    "successes",
    "failures",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "requests_without_usage",
    "cost_usd",
    "requests_without_cost",
    "avg_response_time_ms",
    "p50_response_time_ms",
    "p95_response_time_ms",
    "avg_quality_rating",
]
MODEL_SUMMARY_COLUMNS = [
    "model_id",
    "provider",
    "requests",
    "success_rate",
    "cost_usd",
    "requests_without_usage",
    "avg_response_time_ms",
    "p95_response_time_ms",
    "avg_quality_rating",
]


@dataclass(frozen=True)
class Kpis:
    """Headline figures over a window."""

    requests: int
    successes: int
    cost_nanos: int
    success_rate: float | None
    avg_response_time_ms: float | None
    p95_response_time_ms: float | None
    input_tokens: int
    output_tokens: int
    # Requests that reported no token usage, and those of them whose cost is unknown (not in cost_nanos).
    usage_unknown: int = 0
    cost_unknown: int = 0

    @property
    def cost_usd(self) -> float:
        """Return the cost in dollars."""
        return self.cost_nanos / NANOS_PER_USD

    def usage_note(self) -> str | None:
        """Return what the figures leave out because requests reported no token usage; None when nothing is."""
        return usage_note(self.requests, self.usage_unknown, self.cost_unknown)


def usage_note(requests: int, usage_unknown: int, cost_unknown: int) -> str | None:
    """Return a sentence saying how many requests reported no token usage and what that leaves out of the sums."""
    if not usage_unknown and not cost_unknown:
        return None
    text = f"{usage_unknown:,} of {requests:,} requests reported no token usage: their tokens are not counted"
    if cost_unknown:
        text += f", and the cost of {cost_unknown:,} is unknown and not in the dollars shown"
    return text + " (streamed calls without usage reporting, for example)."


def kpis(window: Window) -> Kpis:
    """Return requests, cost, success rate and latency over the window's days."""
    frame = window.daily()
    if frame.empty:
        return Kpis(0, 0, 0, None, None, None, 0, 0)
    requests = int(frame["requests"].sum())
    merged = histogram.merge_stored(frame["latency_hist"])
    return Kpis(
        requests=requests,
        successes=int(frame["successes"].sum()),
        cost_nanos=int(frame["cost_nanos"].sum()),
        success_rate=float(frame["successes"].sum()) / requests,
        avg_response_time_ms=float(frame["latency_sum_ms"].sum()) / requests,
        p95_response_time_ms=histogram.quantile(merged, 0.95),
        input_tokens=int(frame["input_tokens"].sum()),
        output_tokens=int(frame["output_tokens"].sum()),
        usage_unknown=int(frame["usage_unknown"].sum()),
        cost_unknown=int(frame["cost_unknown"].sum()),
    )


def cost_by_day(window: Window) -> pd.DataFrame:
    """Return cost in dollars and requests per UTC day and model (columns date, model_id, cost_usd, requests)."""
    frame = window.daily()
    if frame.empty:
        return pd.DataFrame(columns=["date", "model_id", "cost_usd", "requests"])
    frame = frame.assign(date=frame["start"].dt.tz_localize(None))
    daily = frame.groupby(["date", "model_id"], as_index=False)[["cost_nanos", "requests"]].sum()
    daily["cost_usd"] = daily["cost_nanos"] / NANOS_PER_USD
    return daily[["date", "model_id", "cost_usd", "requests"]]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def usage_by_day(window: Window) -> list[list[object]]:
    """Return one row per UTC day and model under USAGE_COLUMNS, cost as an exact decimal string."""
    frame = window.daily()
    if frame.empty:
        return []
    frame = frame.assign(day=frame["start"].dt.strftime("%Y-%m-%d"))
    rows: list[list[object]] = []
    for (day, model_id), part in frame.groupby(["day", "model_id"], sort=True):
        requests = int(part["requests"].sum())
        merged = histogram.merge_stored(part["latency_hist"])
        quality_count = int(part["quality_count"].sum())
        info = window.registry.get(str(model_id))
        rows.append(
            [
                day,
                model_id,
                info.provider if info else "",
                requests,
                int(part["successes"].sum()),
                int(part["failures"].sum()),
                int(part["input_tokens"].sum()),
                int(part["output_tokens"].sum()),
                int(part["cache_read_tokens"].sum()),
                int(part["cache_write_tokens"].sum()),
                int(part["reasoning_tokens"].sum()),
                int(part["usage_unknown"].sum()),
                format_usd(int(part["cost_nanos"].sum())),
                int(part["cost_unknown"].sum()),
                round(float(part["latency_sum_ms"].sum()) / requests, 3),
                _rounded(histogram.quantile(merged, 0.5)),
                _rounded(histogram.quantile(merged, 0.95)),
                round(float(part["quality_sum"].sum()) / quality_count, 4) if quality_count else None,
            ]
        )
    return rows


def usage_by_model(window: Window) -> pd.DataFrame:
    """Return one row per model over the window's days under MODEL_SUMMARY_COLUMNS, busiest first."""
    frame = window.daily()
    if frame.empty:
        return pd.DataFrame(columns=MODEL_SUMMARY_COLUMNS)
    rows = []
    for model_id, part in frame.groupby("model_id"):
        requests = int(part["requests"].sum())
        merged = histogram.merge_stored(part["latency_hist"])
        quality_count = int(part["quality_count"].sum())
        info = window.registry.get(str(model_id))
        rows.append(
            {
                "model_id": model_id,
                "provider": info.provider if info else "",
                "requests": requests,
                "success_rate": float(part["successes"].sum()) / requests,
                "cost_usd": int(part["cost_nanos"].sum()) / NANOS_PER_USD,
                "requests_without_usage": int(part["usage_unknown"].sum()),
                "avg_response_time_ms": float(part["latency_sum_ms"].sum()) / requests,
                "p95_response_time_ms": histogram.quantile(merged, 0.95),
                "avg_quality_rating": float(part["quality_sum"].sum()) / quality_count if quality_count else None,
            }
        )
    return pd.DataFrame(rows, columns=MODEL_SUMMARY_COLUMNS).sort_values("requests", ascending=False, ignore_index=True)


def filter_options(window: Window) -> dict[str, list[str]]:
    """Return the values each filter can take in the window (it must hold rows per segment)."""
    frame = window.segments if window.segments is not None else window.daily(by_segment=True)
    return {
        "models": sorted(frame["model_id"].unique().tolist()),
        "providers": sorted(frame["provider"].unique().tolist()),
        "languages": sorted(frame["language"].unique().tolist()),
        "request_types": sorted(frame["request_type"].unique().tolist()),
    }


def period_of(moments: pd.Series, granularity: str) -> pd.Series:
    """Return each UTC hour or day as the start of its period (hour, day or Monday-started week), naive UTC."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    naive = moments.dt.tz_localize(None)
    if granularity == "week":  # weeks start on Monday
        return naive.dt.to_period("W-SUN").dt.start_time
    return naive.dt.floor(GRANULARITIES[granularity])


def usage_series(
    window: Window, *, granularity: str = "day", group_by: str = "model", filters: Filters = ALL_TRAFFIC
) -> pd.DataFrame:
    """Return requests, outcomes, tokens and cost per period (UTC) and group."""
    if group_by not in DIMENSIONS:
        raise ValueError(f"group_by {group_by!r} is not one of {', '.join(DIMENSIONS)}")
    by_segment = group_by in SEGMENT_DIMENSIONS
    if granularity == "hour":
        frame = window.hourly(filters, by_segment=by_segment)
    else:
        frame = window.daily(filters, by_segment=by_segment)
    columns = ["period", "group", *USAGE_MEASURES]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.assign(
        period=period_of(frame["start"], granularity),
        group=frame[DIMENSIONS[group_by]],
        requests_without_usage=frame["usage_unknown"],
        requests_without_cost=frame["cost_unknown"],
    )
    summed = [name for name in USAGE_MEASURES if name != "cost_usd"]
    sums = frame.groupby(["period", "group"], as_index=False)[[*summed, "cost_nanos"]].sum()
    sums["cost_usd"] = sums["cost_nanos"] / NANOS_PER_USD
    return sums[columns].sort_values(["period", "group"], ignore_index=True)


def period_totals(series: pd.DataFrame) -> pd.DataFrame:
    """Return a usage series summed over its groups per period, with the running cost total (the measures it
    has: a series by team or user holds requests, failures, tokens in and out, and cost)."""
    measures = [name for name in series.columns if name not in ("period", "group")]
    totals = series.groupby("period", as_index=False)[measures].sum()
    totals["cumulative_cost_usd"] = totals["cost_usd"].cumsum()
    return totals


def only_models(series: pd.DataFrame, window: Window, filters: Filters) -> pd.DataFrame:
    """Return a usage series grouped by model kept to the filters' models and providers (the other filters need
    segments a series by model does not have)."""
    keep = series
    if filters.models:
        keep = keep[keep["group"].isin(filters.models)]
    if filters.providers:
        providers = {m: i.provider for m, i in window.registry.items()}
        keep = keep[keep["group"].map(lambda m: providers.get(m, UNREGISTERED)).isin(filters.providers)]
    return keep


def series_usage_note(series: pd.DataFrame) -> str | None:
    """Return what a usage series leaves out because requests reported no token usage; None when nothing is."""
    return usage_note(
        int(series["requests"].sum()),
        int(series["requests_without_usage"].sum()),
        int(series["requests_without_cost"].sum()),
    )


def reads_for(granularity: str) -> Reads:
    """Return what a usage series at a granularity, and the filter options beside it, read."""
    grain = "hour" if granularity == "hour" else "day"
    return Reads(segments=grain, chosen_hours=grain == "hour")
