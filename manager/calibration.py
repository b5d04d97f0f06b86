"""How many tokens a model would use for traffic it did not serve, estimated from the ledger, with an interval.

Models do not write the same number of tokens for the same request: answer length differs by model, and
tokenizers count the same prompt differently. So a replay must not price the tokens other models used at the
chosen model's prices. For a model m and a segment s (request type, language), the tokens per request m
would use are estimated as

    est(m, s) = w · own(m, s) + (1 - w) · ratio(m) · mean(s),      w = n(m, s) / (n(m, s) + SHRINK)

where own(m, s) is m's tokens per request in s over its n(m, s) requests there, mean(s) the segment's tokens
per request over every model that served it, and ratio(m) = Σ_s tokens(m, s) / Σ_s n(m, s) · mean(s): how m
compares with the traffic it served, which stands in where m's own evidence in s is thin (shrinkage). A model
with no traffic anywhere keeps the segment's mean (ratio 1) and is uncalibrated. Requests whose usage is
unknown are left out of every mean; failures without usage count as the zero tokens they billed. Latency is
estimated the same way over every request, so a model that writes longer answers in a segment is slower there.

The interval resamples the window's days with replacement (a bootstrap over days) and recomputes the whole
estimate for each resample, so it carries both the traffic's and the calibration's day-to-day variation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Requests of its own in a segment at which a model's own mean gets half the weight.
SHRINK = 20.0
RESAMPLES = 200
INTERVAL = (5.0, 95.0)  # percentiles: a 90% interval


@dataclass(frozen=True)
class Calibration:
    """Tokens per request for every (model, segment) pair, under the point estimate and each resample.

    Arrays are [resample, model, segment]; resample 0 is the window as it was.
    """

    models: list[str]
    segments: list[tuple[str, str]]
    input_per_request: np.ndarray
    output_per_request: np.ndarray
    latency_per_request: np.ndarray  # ms; the same estimate over every request (latency grows with the answer)
    segment_requests: np.ndarray  # [resample, segment]: every request, to project
    own_requests: np.ndarray  # [model, segment]: the model's own requests with usage there (the window as it was)
    model_requests: np.ndarray  # [model]: the model's requests with usage anywhere

    def evidence(self, model: str, segment: tuple[str, str]) -> str:
        """Return where a model's figures in a segment come from: its own traffic there, its overall ratio, none."""
        m, s = self.models.index(model), self.segments.index(segment)
        if self.own_requests[m, s] > 0:
            return f"calibrated ({int(self.own_requests[m, s]):,} of its own requests here)"
        if self.model_requests[m] > 0:
            return "calibrated (its ratio over other segments)"
        return "uncalibrated (no traffic of its own: tokens as served)"

    def calibrated(self, model: str) -> bool:
        """Return True when any of the model's own traffic informs its figures (in every segment, by its ratio)."""
        return bool(self.model_requests[self.models.index(model)] > 0)


def day_weights(days: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Return [1 + resamples, days] weights: all ones, then multinomial resamples of the days (a bootstrap)."""
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(days, np.full(days, 1.0 / days), size=resamples) if days else np.zeros((resamples, 0))
    return np.vstack([np.ones((1, days)), drawn]).astype(float)


def calibrate(daily: pd.DataFrame, weights: np.ndarray | None = None) -> Calibration:
    """Return token estimates from daily per-segment rollup rows (columns start, model_id, request_type,
    language, requests, usage_unknown, input_tokens, output_tokens)."""
    d, days = pd.factorize(daily["start"], sort=True)
    m, model_names = pd.factorize(daily["model_id"].astype(str), sort=True)
    # One key per (request type, language), joined by a character no name holds.
    s, keys = pd.factorize(daily["request_type"].astype(str) + "\x1f" + daily["language"].astype(str), sort=True)
    models = [str(name) for name in model_names]
    segments = [(key.split("\x1f")[0], key.split("\x1f")[1]) for key in keys]
    w = day_weights(len(days)) if weights is None else weights

    def cube(values: pd.Series) -> np.ndarray:
        """Return weighted sums [resample, model, segment] of a per-row quantity."""
        grid = np.zeros((len(days), len(models), len(segments)))
        np.add.at(grid, (d, m, s), values.to_numpy(dtype=float))
        summed: np.ndarray = np.einsum("bd,dms->bms", w, grid)
        return summed

    counted = cube(daily["requests"] - daily["usage_unknown"])
    inputs, outputs = cube(daily["input_tokens"]), cube(daily["output_tokens"])
    requests = cube(daily["requests"])
    everything = requests.sum(axis=1)
    return Calibration(
        models=models,
        segments=segments,
        input_per_request=_estimate(counted, inputs),
        output_per_request=_estimate(counted, outputs),
        latency_per_request=_estimate(requests, cube(daily["latency_sum_ms"])),
        segment_requests=everything,
        own_requests=counted[0],
        model_requests=counted[0].sum(axis=1),
    )


def _estimate(counted: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Return est(m, s) for every resample, model and segment from counts and token sums [b, m, s]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(counted > 0, tokens / counted, 0.0)
        mean = tokens.sum(axis=1) / counted.sum(axis=1)  # [b, s]
        mean = np.nan_to_num(mean)
        expected = (counted * mean[:, None, :]).sum(axis=2)  # [b, m]: the tokens the segments' means predict
        ratio = np.where(expected > 0, tokens.sum(axis=2) / expected, 1.0)
    weight = counted / (counted + SHRINK)
    blended: np.ndarray = weight * own + (1 - weight) * ratio[:, :, None] * mean[:, None, :]
    return blended


def interval(values: np.ndarray) -> tuple[float, float]:
    """Return the 90% interval of a resampled figure (values[0] is the point estimate and is left out)."""
    resampled = values[1:] if len(values) > 1 else values
    low, high = np.percentile(resampled, INTERVAL)
    return float(low), float(high)


@dataclass(frozen=True)
class Backtest:
    """How well calibration from the first part of a window predicted the rest: the cost error overall and of the
    worst model, in percent (predicted over actual, minus one)."""

    fit_days: int
    test_days: int
    error_pct: float
    worst_model: str
    worst_error_pct: float

    def describe(self) -> str:
        """Return the track record in one sentence."""
        return (
            f"Backtest: calibrated on the first {self.fit_days} days, it predicted the cost of the last "
            f"{self.test_days} days' traffic {self.error_pct:+.1f}% off (worst model {self.worst_model}, "
            f"{self.worst_error_pct:+.1f}%)."
        )


FIT_SHARE = 2 / 3  # of the window's days, to calibrate on; the rest is predicted


def backtest(daily: pd.DataFrame, prices: dict[str, tuple[float, float]]) -> Backtest | None:
    """Return the backtest of per-segment token calibration over the window's days (None under 3 days or with
    no priced traffic to predict), from daily per-segment rollup rows with cost_nanos; prices are dollars per 1k
    input and output tokens per model."""
    days = sorted(daily["start"].unique())
    split = int(len(days) * FIT_SHARE)
    if split < 2 or split >= len(days):
        return None
    fit = calibrate(daily[daily["start"] < days[split]], np.ones((1, split)))  # every fit day has rows
    tested = daily[(daily["start"] >= days[split]) & daily["model_id"].isin(list(prices))]
    sums = tested.groupby(["model_id", "request_type", "language"], as_index=False)[
        ["requests", "usage_unknown", "cost_nanos"]
    ].sum()
    predicted: dict[str, float] = {}
    actual: dict[str, float] = {}
    for row in sums.itertuples(index=False):
        segment = (str(row.request_type), str(row.language))
        if row.model_id not in fit.models or segment not in fit.segments:
            continue  # nothing learned about it: not a test of calibration
        m, s = fit.models.index(row.model_id), fit.segments.index(segment)
        counted = row.requests - row.usage_unknown
        price_in, price_out = prices[row.model_id]
        cost = counted * (fit.input_per_request[0, m, s] * price_in + fit.output_per_request[0, m, s] * price_out)
        predicted[row.model_id] = predicted.get(row.model_id, 0.0) + cost / 1000
        actual[row.model_id] = actual.get(row.model_id, 0.0) + row.cost_nanos / 10**9
    errors = {m: (predicted[m] / actual[m] - 1) * 100 for m in actual if actual[m] > 0}
    if not errors:
        return None
    worst = max(errors, key=lambda m: abs(errors[m]))
    total = (sum(predicted[m] for m in errors) / sum(actual[m] for m in errors) - 1) * 100
    return Backtest(split, len(days) - split, total, worst, errors[worst])
