"""What-if: replays of past traffic under another routing policy, calibrated, with the routing table it implies."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from manager.budgets import blocked_by, scope_dimension, scope_models
from manager.calibration import Backtest, backtest, calibrate, interval
from manager.money import NANOS_PER_USD, request_cost_nanos
from manager.periods import period_bounds
from manager.scoring import pareto_frontier
from manager.selection import (
    ASSUMED_SUCCESS_RATE,
    Candidate,
    Policy,
    Selection,
    candidates,
    merge_weights,
    rank,
    selection_reads,
)
from manager.window import Reads, Window, read_window

SEGMENT_COLUMNS = [
    "request_type",
    "language",
    "requests",
    "actual_cost_usd",
    "chosen_model",
    "projected_cost_usd",
    "change_pct",
    "output_ratio",
    "calibrated",
    "projected_latency_ms",
    "projected_success_rate",
    "projected_quality",
    "input_tokens",
    "output_tokens",
    "projected_input_tokens",
    "projected_output_tokens",
    "input_ratio",
    "calibration",
    "fallbacks",
    "figures_from",
]


@dataclass(frozen=True)
class ReplayResult:
    """Actual against projected totals, per segment, and whether each budget would have held."""

    actual: dict[str, float | None]
    projected: dict[str, float | None]
    change_pct: dict[str, float | None]
    segments: pd.DataFrame
    budgets: pd.DataFrame
    policy: Policy
    routes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    backtest: Backtest | None = None

    def confidence_note(self) -> str:
        """Return how sure the projection is: its 90% intervals, and how much traffic was projected uncalibrated."""
        p = self.projected
        requests = int(p.get("requests") or 0)
        if not requests:
            return ""
        text = (
            f"90% interval: cost ${p['cost_usd_low']:,.2f} to ${p['cost_usd_high']:,.2f}, average latency "
            f"{p['avg_response_time_ms_low']:,.0f} to {p['avg_response_time_ms_high']:,.0f} ms (days resampled). "
            "Tokens are projected from how each chosen model wrote in the ledger, not as other models wrote them. "
        )
        uncalibrated = int(p.get("uncalibrated_requests") or 0)
        if uncalibrated:
            share = uncalibrated / requests
            text += (
                f"{uncalibrated:,} requests ({share:.0%}) went to models with no traffic of their own: uncalibrated."
            )
        else:
            text += "Every segment is calibrated."
        if self.backtest is not None:
            text += " " + self.backtest.describe()
        return text

    def as_dict(self) -> dict[str, Any]:
        """Return the CLI's JSON contract."""
        return {
            "actual": self.actual,
            "projected": self.projected,
            "change_pct": self.change_pct,
            "segments": self.segments.to_dict("records"),
            "backtest": None if self.backtest is None else asdict(self.backtest),
            "budgets": self.budgets.to_dict("records"),
        }


def _pct(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return (new - old) / old * 100


def _totals(
    requests: int, cost_nanos: int, latency_sum: float, successes: float, quality_sum: float, quality_weight: float
) -> dict[str, float | None]:
    return {
        "requests": requests,
        "cost_usd": cost_nanos / NANOS_PER_USD,
        "avg_response_time_ms": latency_sum / requests if requests else None,
        "success_rate": successes / requests if requests else None,
        "avg_quality_rating": quality_sum / quality_weight if quality_weight else None,
    }


def reads(at: datetime) -> Reads:
    """Return what a replay reads beside the chosen days' per-model rows: their segments, and what the budgets
    and the live selection read at `at`."""
    return Reads(segments="day") | selection_reads(at)


def replay(window: Window, policy: Policy | None = None, *, fallbacks: int = 2) -> ReplayResult:
    """Replay the window's traffic: each (request type, language) segment goes to the policy's top model.

    The window must hold daily segment rows and the budgets (read with `reads(at)`).
    """
    policy = policy or Policy()
    frame = window.daily(by_segment=True)
    pool = candidates(window.registry, window.daily(), window.hours_covered())
    by_id = {c.model_id: c for c in pool}
    blocked = blocked_by(window)
    if frame.empty:
        empty = pd.DataFrame(columns=SEGMENT_COLUMNS)
        totals = _totals(0, 0, 0.0, 0.0, 0.0, 0.0)
        return ReplayResult(totals, totals, dict.fromkeys(totals), empty, _held(window, frame, {}, by_id), policy)
    # A self-hosted model's host cost is spread over the tokens it served, as served and as projected alike.
    hosting = {c.model_id: c.hosting_per_1k for c in pool if c.hosting_per_1k}
    served_with_hosting = frame.assign(
        cost_nanos=frame["cost_nanos"]
        + [
            round((i + o) / 1000 * hosting.get(m, 0.0) * NANOS_PER_USD)
            for m, i, o in zip(frame["model_id"], frame["input_tokens"], frame["output_tokens"], strict=True)
        ]
    )
    segments = served_with_hosting.groupby(["request_type", "language"], as_index=False)[
        [
            "requests",
            "successes",
            "usage_unknown",
            "input_tokens",
            "output_tokens",
            "cost_nanos",
            "latency_sum_ms",
            "quality_sum",
            "quality_count",
        ]
    ].sum()
    calibration = calibrate(frame)
    rows, routes = [], {}
    projected_nanos = 0
    latency_sum = successes = quality_sum = 0.0
    resampled_cost = np.zeros(len(calibration.segment_requests))
    resampled_latency = np.zeros(len(calibration.segment_requests))
    for seg in segments.to_dict("records"):
        tokens = seg["input_tokens"] + seg["output_tokens"]
        seg_policy = replace(
            policy,
            category=seg["request_type"],
            language=seg["language"] if seg["language"] != "unknown" else None,
            input_share=seg["input_tokens"] / tokens if tokens else policy.input_share,
            require_price=True,
        )
        choice = rank(pool, seg_policy, blocked)
        key = (seg["request_type"], seg["language"])
        routes[key] = [r.model_id for r in choice.ranking[: fallbacks + 1]]
        requests = int(seg["requests"])
        s = calibration.segments.index(key)
        volume = calibration.segment_requests[:, s] / requests  # each resample's share of the segment's traffic
        served = seg["requests"] - seg["usage_unknown"]
        tokens_in, tokens_out, ratios, evidence, calibrated = (
            int(seg["input_tokens"]),
            int(seg["output_tokens"]),
            (1.0, 1.0),
            "as served",
            True,
        )
        if not choice.ranking:  # nothing eligible: the segment stays where it was served
            cost, seg_latency, success, rating, source, chosen = (
                int(seg["cost_nanos"]),
                seg["latency_sum_ms"] / requests,
                seg["successes"] / requests,
                None,
                "as served",
                None,
            )
            rating = seg["quality_sum"] / seg["quality_count"] if seg["quality_count"] else None
            resampled_cost += volume * cost / NANOS_PER_USD
            resampled_latency += calibration.segment_requests[:, s] * seg_latency
        else:
            model = by_id[choice.ranking[0].model_id]
            chosen = model.model_id
            assert model.cost_per_1k_input is not None and model.cost_per_1k_output is not None
            observed = model.requests > 0
            every = calibration.segment_requests[:, s]  # the segment's requests in each resample
            if chosen in calibration.models:  # as the model's own traffic says it would write and answer here
                m = calibration.models.index(chosen)
                per_in, per_out = calibration.input_per_request[:, m, s], calibration.output_per_request[:, m, s]
                every_latency = calibration.latency_per_request[:, m, s]
                ratios = (
                    per_in[0] / (seg["input_tokens"] / served) if served and seg["input_tokens"] else 1.0,
                    per_out[0] / (seg["output_tokens"] / served) if served and seg["output_tokens"] else 1.0,
                )
                evidence, calibrated = calibration.evidence(chosen, key), calibration.calibrated(chosen)
            else:  # a model with no traffic in the window: the tokens as served, its registry latency, flagged
                per_in, per_out = np.full(len(every), tokens_in / requests), np.full(len(every), tokens_out / requests)
                known = model.observed_avg_ms if observed and model.observed_avg_ms is not None else None
                every_latency = np.full(len(every), known if known is not None else model.avg_response_time)
                evidence, calibrated = "uncalibrated (no traffic of its own: tokens as served)", False
            tokens_in, tokens_out = round(every[0] * per_in[0]), round(every[0] * per_out[0])
            seg_latency = float(every_latency[0])
            cost = request_cost_nanos(tokens_in, tokens_out, model.cost_per_1k_input, model.cost_per_1k_output)
            cost += round((tokens_in + tokens_out) / 1000 * (model.hosting_per_1k or 0.0) * NANOS_PER_USD)
            per_1k_in = model.cost_per_1k_input + (model.hosting_per_1k or 0.0)
            per_1k_out = model.cost_per_1k_output + (model.hosting_per_1k or 0.0)
            resampled_cost += every * (per_in * per_1k_in + per_out * per_1k_out) / 1000
            resampled_latency += every * every_latency
            success = model.successes / model.requests if observed else ASSUMED_SUCCESS_RATE
            rating = model.rating_sum / model.ratings if model.ratings else model.quality_score * 5
            source = (
                "observed" if observed and model.ratings else ("observed (registry rating)" if observed else "registry")
            )
        projected_nanos += cost
        latency_sum += seg_latency * requests
        successes += success * requests
        quality_sum += (rating or 0.0) * requests
        rows.append(
            {
                "request_type": seg["request_type"],
                "language": seg["language"],
                "requests": requests,
                "input_tokens": int(seg["input_tokens"]),
                "output_tokens": int(seg["output_tokens"]),
                "actual_cost_usd": int(seg["cost_nanos"]) / NANOS_PER_USD,
                "chosen_model": chosen,
                "fallbacks": ", ".join(routes[key][1:]),
                "projected_input_tokens": tokens_in,
                "projected_output_tokens": tokens_out,
                "input_ratio": ratios[0],
                "output_ratio": ratios[1],
                "calibrated": calibrated,
                "calibration": evidence,
                "projected_cost_usd": cost / NANOS_PER_USD,
                "change_pct": _pct(cost, int(seg["cost_nanos"])),
                "projected_latency_ms": seg_latency,
                "projected_success_rate": success,
                "projected_quality": rating,
                "figures_from": source,
            }
        )
    total_requests = int(segments["requests"].sum())
    actual = _totals(
        total_requests,
        int(segments["cost_nanos"].sum()),
        float(segments["latency_sum_ms"].sum()),
        float(segments["successes"].sum()),
        float(segments["quality_sum"].sum()),
        float(segments["quality_count"].sum()),
    )
    projected = _totals(total_requests, projected_nanos, latency_sum, successes, quality_sum, total_requests)
    # The intervals: the spread of the resamples, moved to centre on the point estimate they vary around.
    low, high = interval(resampled_cost - resampled_cost[0] + projected["cost_usd"])
    projected["cost_usd_low"], projected["cost_usd_high"] = low, high
    average = resampled_latency / calibration.segment_requests.sum(axis=1)
    low, high = interval(average - average[0] + (projected["avg_response_time_ms"] or 0.0))
    projected["avg_response_time_ms_low"], projected["avg_response_time_ms_high"] = low, high
    uncalibrated = [r for r in rows if not r["calibrated"]]
    projected["uncalibrated_requests"] = sum(r["requests"] for r in uncalibrated)
    priced = {
        c.model_id: (c.cost_per_1k_input, c.cost_per_1k_output)
        for c in pool
        if c.cost_per_1k_input is not None and c.cost_per_1k_output is not None
    }
    track = backtest(frame, priced)
    chosen_by_segment = {(r["request_type"], r["language"]): r["chosen_model"] for r in rows}
    return ReplayResult(
        actual=actual,
        projected=projected,
        change_pct={k: _pct(projected[k], actual[k]) for k in actual if k != "requests"},
        segments=pd.DataFrame(rows, columns=SEGMENT_COLUMNS).sort_values(
            "actual_cost_usd", ascending=False, ignore_index=True
        ),
        budgets=_held(window, frame, chosen_by_segment, by_id),
        policy=policy,
        routes=routes,
        backtest=track,
    )


def _held(
    window: Window,
    frame: pd.DataFrame,
    chosen: dict[tuple[str, str], str | None],
    by_id: dict[str, Candidate],
) -> pd.DataFrame:
    """Return, per budget, the worst period's actual and projected spend in the window and whether each held."""
    columns = [
        "name",
        "scope",
        "period",
        "amount_usd",
        "periods",
        "actual_worst_usd",
        "projected_worst_usd",
        "held_actual",
        "held_projected",
    ]
    # A budget on a team or another attribution value is not replayed: the rollups replayed hold no attribution.
    budgets = [(b.name, b.scope, b.period, b.amount_nanos) for b in window.budgets if scope_dimension(b.scope) is None]
    if not budgets:
        return pd.DataFrame(columns=columns)
    info = window.registry
    start, end = window.start, window.end
    rows = []
    if not frame.empty:
        frame = frame.assign(
            chosen=[
                chosen.get((t, lang)) or m
                for t, lang, m in zip(frame["request_type"], frame["language"], frame["model_id"], strict=True)
            ]
        )
        projected_cost = []
        for chosen_id, served, tokens_in, tokens_out, cost in zip(
            frame["chosen"],
            frame["model_id"],
            frame["input_tokens"],
            frame["output_tokens"],
            frame["cost_nanos"],
            strict=True,
        ):
            model = by_id.get(chosen_id)
            if (
                chosen_id == served
                or model is None
                or model.cost_per_1k_input is None
                or model.cost_per_1k_output is None
            ):
                projected_cost.append(int(cost) if chosen_id == served else 0)
            else:
                projected_cost.append(
                    request_cost_nanos(
                        int(tokens_in), int(tokens_out), model.cost_per_1k_input, model.cost_per_1k_output
                    )
                )
        frame = frame.assign(projected_nanos=projected_cost)
    for name, scope, period, amount in budgets:
        models = scope_models(scope, info)
        actual_by: dict[tuple[datetime, datetime], int] = {}
        projected_by: dict[tuple[datetime, datetime], int] = {}
        day = start
        while day <= end:
            bounds = period_bounds(period, datetime.combine(day, datetime.min.time(), UTC))
            actual_by.setdefault(bounds, 0)
            projected_by.setdefault(bounds, 0)
            day += timedelta(days=1)
        if not frame.empty:
            for bounds in actual_by:
                part = frame[(frame["start"] >= bounds[0]) & (frame["start"] < bounds[1])]
                served = part if models is None else part[part["model_id"].isin(models)]
                routed = part if models is None else part[part["chosen"].isin(models)]
                actual_by[bounds] = int(served["cost_nanos"].sum())
                projected_by[bounds] = int(routed["projected_nanos"].sum())
        rows.append(
            {
                "name": name,
                "scope": scope,
                "period": period,
                "amount_usd": amount / NANOS_PER_USD,
                "periods": len(actual_by),
                "actual_worst_usd": max(actual_by.values(), default=0) / NANOS_PER_USD,
                "projected_worst_usd": max(projected_by.values(), default=0) / NANOS_PER_USD,
                "held_actual": max(actual_by.values(), default=0) <= amount,
                "held_projected": max(projected_by.values(), default=0) <= amount,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def routing_table(result: ReplayResult) -> dict[str, Any]:
    """Return the application router's table: each segment's ordered model list (first choice, then fallbacks)."""
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "weights": merge_weights(result.policy.weights),
        "segments": [
            {"request_type": t, "language": lang, "models": models}
            for (t, lang), models in sorted(result.routes.items())
        ],
    }


def selection_board(selection: Selection, policy: Policy) -> pd.DataFrame:
    """Return the eligible, priced models' blended price and quality, marking the top choice."""
    rows = [
        {
            "model_id": r.model_id,
            "price_per_1k_usd": r.price_per_1k_usd,
            "quality": r.scores["quality"],
            "chosen": "yes" if i == 0 else "no",
        }
        for i, r in enumerate(selection.ranking)
        if r.price_per_1k_usd is not None
    ]
    return pd.DataFrame(rows, columns=["model_id", "price_per_1k_usd", "quality", "chosen"])


def frontier_points(board: pd.DataFrame) -> list[int]:
    """Return the row positions of the board on the quality-versus-price Pareto frontier, cheapest first."""
    return pareto_frontier(board["price_per_1k_usd"].tolist(), board["quality"].tolist())


def scenario_summary(result: ReplayResult, policy: Policy) -> dict[str, str]:
    """Return one column of the scenario comparison, as text: the policy and what its replay projects."""
    weights = merge_weights(policy.weights)
    limits = [
        f"{label} {value:g}"
        for label, value in (
            ("max $/1k", policy.max_cost_per_1k),
            ("max p95 ms", policy.max_p95_ms),
            ("min quality", policy.min_quality),
        )
        if value
    ]
    held = result.budgets["held_projected"] if not result.budgets.empty else pd.Series(dtype=bool)
    projected, change = result.projected, result.change_pct

    def shown(value: float | None, template: str) -> str:
        return "n/a" if value is None else template.format(value)

    return {
        "weights": ", ".join(f"{k} {v:g}" for k, v in weights.items()),
        "limits": ", ".join(limits) or "none",
        "actual cost": shown(result.actual["cost_usd"], "${:,.4f}"),
        "projected cost": shown(projected["cost_usd"], "${:,.4f}"),
        "cost change": shown(change["cost_usd"], "{:+.1f}%"),
        "projected latency": shown(projected["avg_response_time_ms"], "{:,.0f} ms"),
        "projected success rate": shown(projected["success_rate"], "{:.2%}"),
        "projected rating": shown(projected["avg_quality_rating"], "{:.2f}"),
        "budgets that would hold": f"{int(held.sum())} of {len(held)}",
    }


def replay_between(
    engine: Engine, start: date, end: date, policy: Policy | None = None, *, fallbacks: int = 2
) -> ReplayResult:
    """Read what a replay of the inclusive UTC days needs, now, and replay them under the policy."""
    at = datetime.now(UTC)
    return replay(read_window(engine, start, end, reads(at), at=at), policy, fallbacks=fallbacks)
