"""Mergeable latency histograms with logarithmic buckets (the DDSketch idea).

Bucket i holds values in (GAMMA**(i-1), GAMMA**i]. Reporting 2*GAMMA**i/(GAMMA+1) for a
bucket is off by at most (GAMMA-1)/(GAMMA+1), about 1.5% for GAMMA = 1.03, so any
percentile of any merged window stays well inside the 3% the dashboard promises.

A rollup row stores its histogram as packed little-endian (int16 bucket, int64 count) pairs,
so a window's rows merge in one vectorised pass over their concatenated bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

GAMMA = 1.03
_LOG_GAMMA = math.log(GAMMA)
# Latencies below this (ms) share the lowest bucket.
MIN_TRACKED_MS = 0.1
_MIN_INDEX = math.ceil(math.log(MIN_TRACKED_MS) / _LOG_GAMMA)

Histogram = dict[int, int]
STORED = np.dtype([("bucket", "<i2"), ("count", "<i8")])


def buckets_of(values_ms: np.ndarray) -> np.ndarray:
    """Return the bucket index of each latency (ms)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.ceil(np.log(np.maximum(values_ms, MIN_TRACKED_MS)) / _LOG_GAMMA)
    return np.where(values_ms <= MIN_TRACKED_MS, _MIN_INDEX, raw).astype(np.int64)


def bucket_of(value_ms: float) -> int:
    """Return the bucket index of one latency (ms)."""
    return int(buckets_of(np.array([value_ms], dtype=float))[0])


def count_at_or_above(stored: bytes | None, bucket: int) -> int:
    """Return how many latencies of a stored histogram lie in the given bucket or above it."""
    if not stored:
        return 0
    packed = np.frombuffer(stored, dtype=STORED)
    return int(packed["count"][packed["bucket"] >= bucket].sum())


def bucket_value(index: int) -> float:
    """Return the representative latency (ms) of a bucket."""
    return 2 * GAMMA**index / (GAMMA + 1)


def histogram_of(values_ms: Iterable[float]) -> Histogram:
    """Return the histogram of some latencies."""
    indices, counts = np.unique(buckets_of(np.asarray(list(values_ms), dtype=float)), return_counts=True)
    return {int(i): int(c) for i, c in zip(indices, counts, strict=True)}


def merge(histograms: Iterable[Mapping[int, int]]) -> Histogram:
    """Return the sum of several histograms."""
    total: Counter[int] = Counter()
    for hist in histograms:
        total.update(hist)
    return dict(total)


def quantile(hist: Mapping[int, int], q: float) -> float | None:
    """Return the q-quantile (0..1) of a histogram in ms, or None when it is empty."""
    count = sum(hist.values())
    if count == 0:
        return None
    rank = q * (count - 1)
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen > rank:
            return bucket_value(index)
    return bucket_value(max(hist))


def encode(hist: Mapping[int, int]) -> bytes:
    """Return the packed bytes stored in a rollup row, buckets in ascending order."""
    packed = np.empty(len(hist), dtype=STORED)
    buckets = sorted(hist)
    packed["bucket"] = buckets
    packed["count"] = [hist[b] for b in buckets]
    return packed.tobytes()


def decode(stored: bytes | None) -> Histogram:
    """Return the histogram stored in a rollup row."""
    if not stored:
        return {}
    packed = np.frombuffer(stored, dtype=STORED)
    return dict(zip(packed["bucket"].tolist(), packed["count"].tolist(), strict=True))


def merge_stored(stored: Iterable[bytes | None]) -> Histogram:
    """Return the sum of many stored histograms, merged in one vectorised pass."""
    parts = list(stored)
    return decode(merge_by_group(np.zeros(len(parts), dtype=np.int64), parts, 1)[0])


def describe(hist: Mapping[int, int]) -> str:
    """Return a histogram as readable text, {bucket: count} in bucket order."""
    return "{" + ", ".join(f"{b}: {hist[b]}" for b in sorted(hist)) + "}"


_OWNER_SHIFT = 1 << 16  # bucket indices fit in int16, so (owner, bucket) packs into one int64 code
_BUCKET_BIAS = 1 << 15


def pack_groups(owners: np.ndarray, buckets: np.ndarray, counts: np.ndarray, groups: int) -> list[bytes]:
    """Return one stored histogram per group 0..groups-1 from (group, bucket, count) triples, summing repeats."""
    code = owners.astype(np.int64) * _OWNER_SHIFT + (buckets.astype(np.int64) + _BUCKET_BIAS)
    unique, position = np.unique(code, return_inverse=True)
    packed = np.empty(len(unique), dtype=STORED)
    packed["bucket"] = unique % _OWNER_SHIFT - _BUCKET_BIAS
    # float64 sums are exact: every count in the ledger stays below 2**53.
    packed["count"] = np.bincount(position, weights=counts, minlength=len(unique)).astype(np.int64)
    ends = np.cumsum(np.bincount(unique // _OWNER_SHIFT, minlength=groups)) * STORED.itemsize
    data = packed.tobytes()
    starts = np.concatenate(([0], ends[:-1]))
    return [data[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def merge_by_group(owners: np.ndarray, stored: list[bytes | None], groups: int) -> list[bytes]:
    """Return one stored histogram per group 0..groups-1: the sum of the stored ones that `owners` assigns to it."""
    blobs = [part or b"" for part in stored]
    parts = np.frombuffer(b"".join(blobs), dtype=STORED)
    sizes = np.array([len(b) for b in blobs], dtype=np.int64) // STORED.itemsize
    return pack_groups(np.repeat(np.asarray(owners, dtype=np.int64), sizes), parts["bucket"], parts["count"], groups)


def add_stored(left: list[bytes], right: list[bytes]) -> list[bytes]:
    """Return the element-wise sums of two equally long lists of stored histograms."""
    if len(left) != len(right):
        raise ValueError("add_stored needs two lists of the same length")
    return merge_by_group(np.tile(np.arange(len(left)), 2), [*left, *right], len(left))
