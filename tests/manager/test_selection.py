from dataclasses import replace

import pytest

from manager.errors import InvalidInput
from manager.selection import Candidate, Policy, merge_weights, rank

BASE = Candidate(
    model_id="base",
    provider="p",
    status="active",
    category="general",
    enabled=True,
    priority=5,
    cost_per_1k_input=0.001,
    cost_per_1k_output=0.002,
    quality_score=0.7,
    avg_response_time=1000.0,
    primary_language="en",
    supported_languages=("en", "fr"),
)
CHEAP = replace(BASE, model_id="cheap", cost_per_1k_input=0.0001, cost_per_1k_output=0.0002, quality_score=0.5)
GOOD = replace(BASE, model_id="good", ratings=100, rating_sum=480.0, requests=100, successes=99)
FAST = replace(BASE, model_id="fast", observed_p95_ms=200.0, requests=50, successes=50)
POOL = [BASE, CHEAP, GOOD, FAST]


def only(name: str) -> dict[str, float]:
    return {k: (1.0 if k == name else 0.0) for k in merge_weights(None)}


def top(policy: Policy, pool: list[Candidate] = POOL, blocked: dict[str, str] | None = None) -> str:
    return rank(pool, policy, blocked).ranking[0].model_id


def test_all_weight_on_quality_picks_the_best_rated() -> None:
    assert top(Policy(weights=only("quality"))) == "good"


def test_all_weight_on_cost_picks_the_cheapest() -> None:
    assert top(Policy(weights=only("cost"))) == "cheap"


def test_all_weight_on_speed_picks_the_fastest_p95() -> None:
    assert top(Policy(weights=only("speed"))) == "fast"


def test_every_factor_score_is_between_0_and_1() -> None:
    for ranked in rank(POOL, Policy()).ranking:
        assert all(0.0 <= v <= 1.0 for v in ranked.scores.values())
        assert 0.0 <= ranked.score <= 1.0


@pytest.mark.parametrize(
    ("candidate", "policy", "reason"),
    [
        (replace(BASE, enabled=False), Policy(), "disabled in the registry"),
        (replace(BASE, status="deprecated"), Policy(), "status is deprecated"),
        (replace(BASE, status="experimental"), Policy(), "status is experimental (experimental models are off)"),
        (
            replace(BASE, category="grammar"),
            Policy(category="translation"),
            "category grammar does not serve translation",
        ),
        (BASE, Policy(language="ja"), "does not support language ja"),
        (BASE, Policy(max_cost_per_1k=0.0001), "$0.001400 per 1k tokens is above the ceiling of $0.000100"),
        (
            replace(BASE, cost_per_1k_input=None),
            Policy(max_cost_per_1k=1.0),
            "unpriced: its cost per 1k tokens is unknown",
        ),
        (BASE, Policy(max_p95_ms=500.0), "p95 1,000 ms is above the ceiling of 500 ms"),
        (BASE, Policy(min_quality=0.9), "quality 0.70 is below the minimum of 0.90"),
    ],
)
def test_each_filter_excludes_with_its_reason(candidate: Candidate, policy: Policy, reason: str) -> None:
    assert rank([candidate], policy).excluded == [(candidate.model_id, reason)]


def test_experimental_models_are_considered_on_request() -> None:
    trial = replace(BASE, status="experimental")
    assert rank([trial], Policy(include_experimental=True)).ranking[0].model_id == "base"


def test_a_model_under_an_exhausted_hard_budget_is_excluded_with_that_reason() -> None:
    selection = rank(POOL, Policy(weights=only("quality")), {"good": "hard budget 'cap' is exhausted"})
    assert ("good", "hard budget 'cap' is exhausted") in selection.excluded
    assert "good" not in [r.model_id for r in selection.ranking]


def test_ties_go_to_priority_then_model_id() -> None:
    twins = [replace(BASE, model_id="b"), replace(BASE, model_id="a"), replace(BASE, model_id="c", priority=6)]
    assert [r.model_id for r in rank(twins, Policy(weights=only("quality"))).ranking] == ["c", "a", "b"]


def test_language_match_prefers_the_primary_language() -> None:
    french = replace(BASE, model_id="french", primary_language="fr", supported_languages=("fr",))
    assert top(Policy(language="fr", weights=only("language")), [BASE, french]) == "french"


def test_unknown_and_negative_weights_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        merge_weights({"colour": 1.0, "cost": -1.0})
    assert caught.value.problems == [
        "weight 'colour': unknown (use quality, reliability, language, cost, speed, category, priority)",
        "weight 'cost': -1.0 is negative (allowed 0 or more)",
    ]


def test_unset_weights_keep_their_defaults() -> None:
    assert merge_weights({"cost": 0.9})["quality"] == merge_weights(None)["quality"]
