"""Choosing a model: seven factor scores, filters with reasons, a weighted ranking (pure), and select_model live."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from manager.budgets import Attribution, blocked_by
from manager.budgets import reads as budget_reads
from manager.errors import InvalidInput
from manager.ledger import histogram
from manager.ledger.attribution import AttributionError, request_attribution
from manager.registry import ModelInfo
from manager.scoring import cost_scores
from manager.window import Reads, Window, read_window

WEIGHT_NAMES = ("quality", "reliability", "language", "cost", "speed", "category", "priority")
DEFAULT_WEIGHTS: dict[str, float] = {
    "quality": 0.25,
    "reliability": 0.20,
    "language": 0.15,
    "cost": 0.15,
    "speed": 0.10,
    "category": 0.10,
    "priority": 0.05,
}
# How many observed ratings count as much as the registry's own quality_score when blending the two.
RATINGS_PRIOR = 20
# Success rate assumed for a model with no observed requests.
ASSUMED_SUCCESS_RATE = 0.95
SELECTABLE_STATUSES = ("active",)


@dataclass(frozen=True)
class Candidate:
    """What selection knows of one model: its registry row and what was observed of it."""

    model_id: str
    provider: str
    status: str
    category: str
    enabled: bool
    priority: int
    cost_per_1k_input: float | None
    cost_per_1k_output: float | None
    quality_score: float
    avg_response_time: float
    primary_language: str
    supported_languages: tuple[str, ...]
    requests: int = 0
    successes: int = 0
    ratings: int = 0
    rating_sum: float = 0.0
    observed_p95_ms: float | None = None
    observed_avg_ms: float | None = None
    # A self-hosted model's host cost, spread over the tokens it was observed to serve in `observed_hours`.
    host_cost_per_hour: float | None = None
    tokens: int = 0
    observed_hours: float = 0.0

    @property
    def hosting_per_1k(self) -> float | None:
        """Return the host's cost per 1k tokens served, or None when there is no host cost or no traffic."""
        if not self.host_cost_per_hour or not self.tokens or self.observed_hours <= 0:
            return None
        return self.host_cost_per_hour * self.observed_hours / (self.tokens / 1000)


class Weights(Mapping[str, float]):
    """The seven weights, the defaults completed with the given ones and validated; immutable and hashable."""

    __slots__ = ("_items",)

    def __init__(self, given: Mapping[str, float] | None = None) -> None:
        self._items = tuple(merge_weights(given).items())

    def __getitem__(self, name: str) -> float:
        for key, value in self._items:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return dict(self.items()) == dict(other.items()) if isinstance(other, Mapping) else NotImplemented

    def __repr__(self) -> str:
        return f"Weights({dict(self._items)!r})"


@dataclass(frozen=True)
class Policy:
    """What the caller asks for: filters, the weights of the seven scores, and the segment's token mix.

    Validated when made (InvalidInput names every bad field) and hashable, so it can key a cache as it is.
    """

    category: str | None = None
    language: str | None = None
    max_cost_per_1k: float | None = None
    max_p95_ms: float | None = None
    min_quality: float | None = None
    include_experimental: bool = False
    weights: Mapping[str, float] = field(default_factory=Weights)
    input_share: float = 0.6  # fraction of the segment's tokens that are input tokens
    require_price: bool = False  # a replay must price every choice

    def __post_init__(self) -> None:
        problems = []
        try:
            object.__setattr__(self, "weights", Weights(self.weights))
        except InvalidInput as error:
            problems += error.problems
        for name in ("max_cost_per_1k", "max_p95_ms"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                problems.append(f"{name}: {value!r} is negative (allowed 0 or more)")
        if self.min_quality is not None and not 0 <= self.min_quality <= 1:
            problems.append(f"min_quality: {self.min_quality!r} is outside 0 to 1")
        if not 0 <= self.input_share <= 1:
            problems.append(f"input_share: {self.input_share!r} is outside 0 to 1")
        if problems:
            raise InvalidInput(problems)


@dataclass(frozen=True)
class Ranked:
    """A model that passed the filters, with its total and factor scores."""

    model_id: str
    score: float
    scores: dict[str, float]
    weighted: dict[str, float]
    price_per_1k_usd: float | None = None


@dataclass(frozen=True)
class Selection:
    """The ranking (best first) and every excluded model with its reason."""

    ranking: list[Ranked]
    excluded: list[tuple[str, str]]

    def as_dict(self, top: int | None = None) -> dict[str, object]:
        """Return the CLI's JSON contract."""
        ranked = self.ranking[:top] if top else self.ranking
        return {
            "ranking": [{"model_id": r.model_id, "score": r.score, "scores": r.scores} for r in ranked],
            "excluded": [{"model_id": m, "reason": reason} for m, reason in self.excluded],
        }


def merge_weights(given: Mapping[str, float] | None) -> dict[str, float]:
    """Return the default weights with the given ones applied; refuse unknown names and negative values."""
    weights = dict(DEFAULT_WEIGHTS)
    problems = []
    for name, value in (given or {}).items():
        if name not in WEIGHT_NAMES:
            problems.append(f"weight {name!r}: unknown (use {', '.join(WEIGHT_NAMES)})")
        elif not value >= 0:
            problems.append(f"weight {name!r}: {value!r} is negative (allowed 0 or more)")
        else:
            weights[name] = float(value)
    if not problems and sum(weights.values()) <= 0:
        problems.append("weights: at least one must be above 0")
    if problems:
        raise InvalidInput(problems)
    return weights


def blended_price(c: Candidate, input_share: float) -> float | None:
    """Return the dollars per 1k tokens at the segment's input/output mix, its host's share included for a
    self-hosted model, or None when unpriced."""
    if c.cost_per_1k_input is None or c.cost_per_1k_output is None:
        return None
    listed = input_share * c.cost_per_1k_input + (1 - input_share) * c.cost_per_1k_output
    return listed + (c.hosting_per_1k or 0.0)


def quality(c: Candidate) -> float:
    """Return the registry's quality_score blended with the observed ratings (0..5 scaled to 0..1) by their count."""
    if c.ratings == 0:
        return c.quality_score
    weight = c.ratings / (c.ratings + RATINGS_PRIOR)
    return (1 - weight) * c.quality_score + weight * (c.rating_sum / c.ratings / 5)


def p95_ms(c: Candidate) -> float:
    """Return the observed p95 latency, else the registry's average response time."""
    return c.observed_p95_ms if c.observed_p95_ms is not None else c.avg_response_time


def _language_score(c: Candidate, language: str | None) -> float:
    if language is None or language == c.primary_language:
        return 1.0
    return 0.7 if language in c.supported_languages else 0.0


def _category_score(c: Candidate, category: str | None) -> float:
    if category is None or c.category == category:
        return 1.0
    return 0.5 if c.category == "general" else 0.0


def exclusion(c: Candidate, policy: Policy, blocked: Mapping[str, str]) -> str | None:
    """Return why a model may not serve the policy, or None when it may."""
    if not c.enabled:
        return "disabled in the registry"
    allowed = SELECTABLE_STATUSES + (("experimental",) if policy.include_experimental else ())
    if c.status not in allowed:
        return f"status is {c.status}" + (" (experimental models are off)" if c.status == "experimental" else "")
    if c.model_id in blocked:
        return blocked[c.model_id]
    if policy.category and c.category not in (policy.category, "general"):
        return f"category {c.category} does not serve {policy.category}"
    if policy.language and policy.language != c.primary_language and policy.language not in c.supported_languages:
        return f"does not support language {policy.language}"
    price = blended_price(c, policy.input_share)
    if policy.require_price and price is None:
        return "unpriced: its cost cannot be projected"
    if policy.max_cost_per_1k is not None:
        if price is None:
            return "unpriced: its cost per 1k tokens is unknown"
        if price > policy.max_cost_per_1k:
            return f"${price:.6f} per 1k tokens is above the ceiling of ${policy.max_cost_per_1k:.6f}"
    if policy.max_p95_ms is not None and p95_ms(c) > policy.max_p95_ms:
        return f"p95 {p95_ms(c):,.0f} ms is above the ceiling of {policy.max_p95_ms:,.0f} ms"
    if policy.min_quality is not None and quality(c) < policy.min_quality:
        return f"quality {quality(c):.2f} is below the minimum of {policy.min_quality:.2f}"
    return None


def rank(candidates: Sequence[Candidate], policy: Policy, blocked: Mapping[str, str] | None = None) -> Selection:
    """Return the eligible models ranked by the weighted sum of their factor scores, and the excluded ones."""
    weights = merge_weights(policy.weights)
    blocked = blocked or {}
    eligible, excluded = [], []
    for c in sorted(candidates, key=lambda c: c.model_id):
        reason = exclusion(c, policy, blocked)
        if reason is None:
            eligible.append(c)
        else:
            excluded.append((c.model_id, reason))
    costs = dict(
        zip(
            [c.model_id for c in eligible],
            cost_scores([blended_price(c, policy.input_share) for c in eligible]),
            strict=True,
        )
    )
    fastest = min((p95_ms(c) for c in eligible), default=None)
    total_weight = sum(weights.values())
    ranking = []
    for c in eligible:
        price = blended_price(c, policy.input_share)
        scores = {
            "quality": quality(c),
            "reliability": c.successes / c.requests if c.requests else ASSUMED_SUCCESS_RATE,
            "language": _language_score(c, policy.language),
            "cost": costs[c.model_id],
            "speed": 1.0 if not fastest or p95_ms(c) <= fastest else fastest / p95_ms(c),
            "category": _category_score(c, policy.category),
            "priority": min(max(c.priority, 0), 10) / 10,
        }
        weighted = {k: weights[k] * v / total_weight for k, v in scores.items()}
        ranking.append(Ranked(c.model_id, sum(weighted.values()), scores, weighted, price))
    order = {c.model_id: c for c in eligible}
    # Ties go to the higher registry priority, then the model_id, so the choice never flips between calls.
    ranking.sort(key=lambda r: (-round(r.score, 12), -order[r.model_id].priority, r.model_id))
    return Selection(ranking, excluded)


OBSERVATION_DAYS = 7


def candidates(info: Mapping[str, ModelInfo], observed: pd.DataFrame, hours: float = 0.0) -> list[Candidate]:
    """Return every registered model as a Candidate, with what the per-model rollup rows (covering `hours`)
    observed of it."""
    per_model = {str(m): part for m, part in observed.groupby("model_id")} if not observed.empty else {}
    result = []
    for model_id, m in sorted(info.items()):
        part = per_model.get(model_id)
        extra: dict[str, Any] = {}
        if part is not None:
            requests = int(part["requests"].sum())
            merged = histogram.merge_stored(part["latency_hist"])
            extra = {
                "requests": requests,
                "successes": int(part["successes"].sum()),
                "ratings": int(part["quality_count"].sum()),
                "rating_sum": float(part["quality_sum"].sum()),
                "observed_p95_ms": histogram.quantile(merged, 0.95),
                "observed_avg_ms": float(part["latency_sum_ms"].sum()) / requests if requests else None,
                "tokens": int(part["input_tokens"].sum() + part["output_tokens"].sum()),
            }
        result.append(
            Candidate(
                model_id=model_id,
                provider=m.provider,
                status=m.status,
                category=m.category,
                enabled=m.enabled,
                priority=m.priority,
                cost_per_1k_input=m.cost_per_1k_input,
                cost_per_1k_output=m.cost_per_1k_output,
                quality_score=m.quality_score,
                avg_response_time=m.avg_response_time,
                primary_language=m.primary_language,
                supported_languages=m.supported_languages,
                host_cost_per_hour=m.host_cost_per_hour,
                observed_hours=hours,
                **extra,
            )
        )
    return result


def selection_reads(at: datetime) -> Reads:
    """Return what selecting a model at `at` reads: the last week's per-model days, and the budgets."""
    return Reads(days_from=at.date() - timedelta(days=OBSERVATION_DAYS)) | budget_reads(at)


def select_in(window: Window, policy: Policy | None = None, attribution: Attribution | None = None) -> Selection:
    """Return the models ranked under the policy at the window's moment, from its last week and its budgets;
    `attribution` says whose request it is, for budgets on a team, user, key, app, environment or tag."""
    day = window.at.replace(hour=0, minute=0, second=0, microsecond=0)
    first = day - timedelta(days=OBSERVATION_DAYS)
    observed = window.days_between(first, day + timedelta(days=1))
    hours = (window.at - first) / timedelta(hours=1)
    return rank(candidates(window.registry, observed, hours), policy or Policy(), blocked_by(window, attribution))


def select_model(
    engine: Engine,
    policy: Policy | None = None,
    *,
    at: datetime | None = None,
    user: str | None = None,
    team: str | None = None,
    api_key: str | None = None,
    app: str | None = None,
    environment: str | None = None,
    tags: Sequence[str] | str | None = None,
) -> Selection:
    """Return the models ranked for a request under the policy, from the last week's observations and budgets.

    The request's user, team, API key, app, environment and tags bring in the hard budgets on them: an exhausted
    one excludes every model for this request only, with its reason.
    """
    at = (at or datetime.now(UTC)).astimezone(UTC)
    try:
        attribution = request_attribution(
            user=user, team=team, api_key=api_key, app=app, environment=environment, tags=tags
        )
    except AttributionError as error:
        raise InvalidInput([str(error)]) from None
    window = read_window(engine, at.date(), at.date(), selection_reads(at), at=at)
    return select_in(window, policy, attribution)
