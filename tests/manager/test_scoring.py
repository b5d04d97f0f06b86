from manager.scoring import composite_scores, pareto_frontier, relative_to_best


def test_lower_is_better_scores_the_best_value_one() -> None:
    assert relative_to_best([100.0, 200.0, None], lower_is_better=True) == [1.0, 0.5, 0.0]


def test_higher_is_better_scores_against_the_maximum() -> None:
    assert relative_to_best([2.0, 4.0], lower_is_better=False) == [0.5, 1.0]


def test_free_models_score_full_marks_on_cost() -> None:
    assert relative_to_best([0.0, 0.001], lower_is_better=True) == [1.0, 0.0]


def test_a_model_better_on_every_part_scores_higher() -> None:
    good, bad = composite_scores([0.9, 0.5], [0.99, 0.8], [800.0, 2000.0], [0.001, 0.002])
    assert good > bad


def test_pareto_frontier_keeps_points_nothing_beats_on_both_axes() -> None:
    costs = [1.0, 2.0, 3.0, 2.5]
    quality = [3.0, 4.0, 4.5, 3.5]
    assert pareto_frontier(costs, quality) == [0, 1, 2]
