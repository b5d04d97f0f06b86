import numpy as np
import pytest

from manager.ledger import histogram


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_quantiles_of_log_normal_latencies_are_within_3_percent(q: float) -> None:
    values = np.random.default_rng(3).lognormal(7.0, 1.1, 50_000)
    estimate = histogram.quantile(histogram.histogram_of(values), q)
    exact = float(np.quantile(values, q))
    assert estimate == pytest.approx(exact, rel=0.03)


def test_merging_hourly_histograms_equals_the_histogram_of_all_values() -> None:
    rng = np.random.default_rng(5)
    hours = [rng.lognormal(6.0, 0.6, 1000) for _ in range(24)]
    merged = histogram.merge(histogram.histogram_of(h) for h in hours)
    assert merged == histogram.histogram_of(np.concatenate(hours))


def test_encoded_histogram_decodes_to_itself() -> None:
    hist = histogram.histogram_of([0.0, 1.5, 250.0, 250.1, 90_000.0])
    assert histogram.decode(histogram.encode(hist)) == hist


def test_empty_histogram_has_no_quantile() -> None:
    assert histogram.quantile({}, 0.5) is None


def test_stored_histograms_merge_to_the_histogram_of_all_values() -> None:
    rng = np.random.default_rng(11)
    parts = [rng.lognormal(6, 1.2, size) for size in (1, 50, 5000)]
    stored = [histogram.encode(histogram.histogram_of(p)) for p in parts]
    assert histogram.merge_stored([*stored, None, b""]) == histogram.histogram_of(np.concatenate(parts))


def test_counts_beyond_32_bits_survive_storage_and_merging() -> None:
    big = {-77: 3, 250: 5_000_000_000, 700: 2**52}
    assert histogram.decode(histogram.encode(big)) == big
    assert histogram.merge_stored([histogram.encode(big), histogram.encode({250: 1})])[250] == 5_000_000_001


def test_stored_histograms_add_element_wise() -> None:
    left = [histogram.encode({1: 2, 5: 1}), b"", histogram.encode({-3: 4})]
    right = [histogram.encode({5: 2, 9: 1}), histogram.encode({7: 7}), b""]
    summed = [histogram.decode(x) for x in histogram.add_stored(left, right)]
    assert summed == [{1: 2, 5: 3, 9: 1}, {7: 7}, {-3: 4}]
