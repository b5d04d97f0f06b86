"""A replay that knows how each model behaves: on traffic whose truth is known (the generator knows what every
model would have written for every request), the projection lands near the truth and its interval covers it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from manager import whatif
from manager.calibration import calibrate
from manager.ledger import ingest
from manager.money import request_cost_nanos
from manager.selection import Policy

VERBOSE, TERSE = "claude-3-haiku-20240307", "deepseek-chat"
PRICES = {VERBOSE: (0.00025, 0.00125)}
OUTPUT_RATIO, INPUT_RATIO = 1.6, 1.1  # the verbose model's answers, and its tokenizer's count of a prompt
START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 30
SEGMENTS = [("translation", "en"), ("grammar", "en"), ("conversation", "en"), ("vocabulary", "en")]


def latency_ms(output_tokens: np.ndarray) -> np.ndarray:
    """Return how long an answer takes: a fixed start plus the time to write each token."""
    return 150.0 + 3.0 * output_tokens


def traffic(
    n: int = 20_000, seed: int = 4, verbose_share: tuple[float, ...] = (0.5,) * 4
) -> tuple[pd.DataFrame, Decimal]:
    """Return n requests split at random between the two models (VERBOSE takes verbose_share of each segment),
    and what they would all have cost on VERBOSE."""
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, len(SEGMENTS), n)
    # Each segment has prompts and answers of its own typical length.
    prompt = np.maximum(1, rng.lognormal(np.log(300 + 150 * segment), 0.5)).astype(int)
    answer = np.maximum(1, rng.lognormal(np.log(120 + 80 * segment), 0.6)).astype(int)
    verbose = rng.random(n) < np.array(verbose_share)[segment]
    in_verbose = np.round(prompt * INPUT_RATIO).astype(int)
    out_verbose = np.round(answer * OUTPUT_RATIO).astype(int)
    frame = pd.DataFrame(
        {
            "request_id": [f"t-{i}" for i in range(n)],
            "timestamp": [START + timedelta(seconds=float(x)) for x in np.sort(rng.uniform(0, DAYS * 86400, n))],
            "model_id": np.where(verbose, VERBOSE, TERSE),
            "request_type": [SEGMENTS[s][0] for s in segment],
            "language": [SEGMENTS[s][1] for s in segment],
            "input_tokens": np.where(verbose, in_verbose, prompt),
            "output_tokens": np.where(verbose, out_verbose, answer),
            "response_time_ms": latency_ms(np.where(verbose, out_verbose, answer)) * rng.lognormal(0, 0.1, n),
            "success": True,
        }
    )
    truth = sum(
        request_cost_nanos(int(i), int(o), *PRICES[VERBOSE]) for i, o in zip(in_verbose, out_verbose, strict=True)
    )
    return frame, Decimal(truth) / 10**9


def everything_to_the_verbose_model(engine: Engine) -> whatif.ReplayResult:
    policy = Policy(weights={"priority": 1.0})  # the verbose model has the highest priority of the defaults
    result = whatif.replay_between(engine, date(2026, 3, 1), date(2026, 3, 30), policy)
    assert set(result.segments["chosen_model"]) == {VERBOSE}
    return result


def test_the_projected_cost_of_a_verbose_model_lands_within_2_percent_of_the_truth(engine: Engine) -> None:
    frame, truth = traffic()
    ingest.ingest_frame(engine, frame)
    projected = everything_to_the_verbose_model(engine).projected
    assert float(projected["cost_usd"]) == pytest.approx(float(truth), rel=0.02)
    assert projected["cost_usd_low"] <= float(truth) <= projected["cost_usd_high"]


def test_pricing_the_tokens_as_served_misses_the_truth_by_more_than_10_percent(engine: Engine) -> None:
    frame, truth = traffic()
    served = (
        request_cost_nanos(int(frame["input_tokens"].sum()), int(frame["output_tokens"].sum()), *PRICES[VERBOSE])
        / 10**9
    )
    assert abs(served - float(truth)) / float(truth) > 0.10  # what the replay did before calibration


def test_each_segment_reports_the_ratios_used_and_that_they_are_calibrated(engine: Engine) -> None:
    frame, _ = traffic()
    ingest.ingest_frame(engine, frame)
    segments = everything_to_the_verbose_model(engine).segments
    # Half the traffic is the verbose model's own: against the mix it would replace, it writes ~1.6 / 1.3.
    assert segments["output_ratio"].to_numpy() == pytest.approx(OUTPUT_RATIO / (1 + OUTPUT_RATIO) * 2, rel=0.05)
    assert segments["calibrated"].all()
    assert segments["calibration"].str.startswith("calibrated (").all()


def test_a_model_without_evidence_in_a_segment_borrows_its_ratio_from_the_others() -> None:
    rows = [
        ("2026-03-01", TERSE, "translation", 100, 1000, 1000),
        ("2026-03-01", VERBOSE, "translation", 100, 1000, 1600),
        ("2026-03-01", TERSE, "grammar", 100, 2000, 3000),  # the verbose model never served grammar
    ]
    columns = ["start", "model_id", "request_type", "requests", "input_tokens", "output_tokens"]
    daily = pd.DataFrame(rows, columns=columns).assign(language="en", usage_unknown=0, latency_sum_ms=0.0)
    calibration = calibrate(daily)
    m, s = calibration.models.index(VERBOSE), calibration.segments.index(("grammar", "en"))
    # ratio: 1600 tokens against the translation mean of 1300 per request: 30 * 1600/1300 per request in grammar
    assert calibration.output_per_request[0, m, s] == pytest.approx(30 * 1600 / 1300)
    assert calibration.evidence(VERBOSE, ("grammar", "en")) == "calibrated (its ratio over other segments)"


def test_the_backtest_predicts_the_held_out_days_and_reaches_the_json(engine: Engine) -> None:
    frame, _ = traffic()
    ingest.ingest_frame(engine, frame)
    result = everything_to_the_verbose_model(engine)
    track = result.backtest
    assert track is not None and (track.fit_days, track.test_days) == (20, 10)
    assert abs(track.error_pct) < 3 and abs(track.worst_error_pct) < 5
    assert "Backtest: calibrated on the first 20 days" in result.confidence_note()
    as_json = result.as_dict()
    assert as_json["backtest"]["test_days"] == 10
    assert {"cost_usd_low", "cost_usd_high"} <= set(as_json["projected"])
    assert {"input_ratio", "output_ratio", "calibrated"} <= set(as_json["segments"][0])


def test_projected_latency_follows_the_answers_the_model_would_write_in_each_segment(engine: Engine) -> None:
    # The verbose model mostly served the short-answer segment: its overall average understates the rest.
    frame, _ = traffic(verbose_share=(0.9, 0.5, 0.3, 0.1), seed=6)
    ingest.ingest_frame(engine, frame)
    projected = everything_to_the_verbose_model(engine).projected
    rng = np.random.default_rng(6)
    segment = rng.integers(0, len(SEGMENTS), len(frame))
    rng.lognormal(np.log(300 + 150 * segment), 0.5)
    answer = np.maximum(1, rng.lognormal(np.log(120 + 80 * segment), 0.6)).astype(int)
    truth = float(latency_ms(np.round(answer * OUTPUT_RATIO)).mean()) * float(np.exp(0.1**2 / 2))
    own_average = float(frame.loc[frame["model_id"] == VERBOSE, "response_time_ms"].mean())
    assert abs(own_average - truth) / truth > 0.10  # what the replay projected before: the model's own average
    assert projected["avg_response_time_ms"] == pytest.approx(truth, rel=0.03)
    assert projected["avg_response_time_ms_low"] <= truth <= projected["avg_response_time_ms_high"]
