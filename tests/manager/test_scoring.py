import pytest

from manager.scoring import composite_scores, cost_scores, pareto_frontier, relative_to_best


def test_lower_is_better_scores_the_best_value_one() -> None:
    assert relative_to_best([100.0, 200.0, None], lower_is_better=True) == [1.0, 0.5, 0.0]


def test_higher_is_better_scores_against_the_maximum() -> None:
    assert relative_to_best([2.0, 4.0], lower_is_better=False) == [0.5, 1.0]


def test_a_free_model_ties_with_the_cheapest_paid_one_instead_of_zeroing_it() -> None:
    assert cost_scores([0.0, 0.001]) == [1.0, 1.0]


def test_cost_scores_lose_a_third_per_tenfold_price_and_unknown_scores_zero() -> None:
    scores = cost_scores([0.001, 0.01, 0.1, 1.0, 5.0, None])
    assert scores == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0, 0.0, 0.0])


def test_no_free_model_outranks_a_paid_one_better_on_every_other_part() -> None:
    free, paid = composite_scores([0.6, 0.7], [0.95, 0.97], [2000.0, 1500.0], [0.0, 0.0004])
    assert paid > free


def test_a_model_better_on_every_part_scores_higher() -> None:
    good, bad = composite_scores([0.9, 0.5], [0.99, 0.8], [800.0, 2000.0], [0.001, 0.002])
    assert good > bad


def test_pareto_frontier_keeps_points_nothing_beats_on_both_axes() -> None:
    costs = [1.0, 2.0, 3.0, 2.5]
    quality = [3.0, 4.0, 4.5, 3.5]
    assert pareto_frontier(costs, quality) == [0, 1, 2]
