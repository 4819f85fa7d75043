"""Histogram math checked against numpy's exact quantiles of the raw observations."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from telemetry.histograms import from_exponential, merge, percentiles, quantile

LATENCY_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


def bucketed(observations, bounds):
    """OTLP bucketing, independently of the code under test: bucket i holds (bounds[i-1], bounds[i]]."""
    indexes = np.searchsorted(
        np.asarray(bounds, dtype=float), np.asarray(observations, dtype=float), side="left"
    )
    return np.bincount(indexes, minlength=len(bounds) + 1).tolist()


def bucket_edges(bounds, index):
    """(lower, upper) of bucket `index`; the first bucket starts at 0 unless its bound is <= 0."""
    if index == 0:
        return (min(0.0, bounds[0]), bounds[0])
    if index == len(bounds):
        return (bounds[-1], math.inf)
    return (bounds[index - 1], bounds[index])


bounds_strategy = st.lists(
    st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=1, max_size=20, unique=True
).map(sorted)
observations_strategy = st.lists(
    st.floats(min_value=0.0, max_value=2e4, allow_nan=False), min_size=1, max_size=300
)
q_strategy = st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0]) | st.floats(0.0, 1.0)


@given(bounds=bounds_strategy, observations=observations_strategy, q=q_strategy)
def test_quantile_lies_in_the_bucket_of_the_exact_quantile(bounds, observations, q):
    counts = bucketed(observations, bounds)
    exact = float(np.quantile(observations, q, method="inverted_cdf"))
    exact_bucket = int(np.searchsorted(bounds, exact, side="left"))

    estimate = quantile(bounds, counts, q)

    if exact_bucket == len(bounds):  # rank in the +Inf bucket
        assert estimate == bounds[-1]
    else:
        lower, upper = bucket_edges(bounds, exact_bucket)
        assert lower - 1e-9 <= estimate <= upper + 1e-9


def test_linear_interpolation_inside_the_bucket():
    # 10 observations in (0.1, 0.5]; the median rank 5 is half-way through that bucket.
    assert quantile([0.1, 0.5, 1.0], [0, 10, 0, 0], 0.5) == pytest.approx(0.3)
    # ranks 95 and 99 of 100 fall in (1, 2] holding 10 (ranks 91..100)
    assert quantile([1.0, 2.0], [90, 10, 0], 0.95) == pytest.approx(1.5)
    assert quantile([1.0, 2.0], [90, 10, 0], 0.99) == pytest.approx(1.9)


def test_first_bucket_starts_at_zero_or_is_its_own_bound_when_not_positive():
    assert quantile([4.0, 8.0], [10, 0, 0], 0.5) == pytest.approx(2.0)
    assert quantile([0.0, 8.0], [10, 0, 0], 0.5) == 0.0
    assert quantile([-2.0, 8.0], [10, 0, 0], 0.5) == -2.0


def test_rank_in_the_inf_bucket_yields_the_highest_finite_bound():
    assert quantile([0.1, 0.5], [1, 1, 98], 0.5) == 0.5


def test_single_bucket_and_empty_buckets():
    assert quantile([1.0], [0, 0], 0.5) is None
    assert quantile([0.1, 0.2, 0.3], [0, 0, 4, 0], 0.0) == pytest.approx(0.2)  # skips empty leading buckets
    assert quantile([0.1, 0.2, 0.3], [0, 0, 4, 0], 1.0) == pytest.approx(0.3)
    assert quantile([], [7], 0.5) is None  # only +Inf: nothing to estimate from


def test_percentiles_are_p50_p95_p99():
    counts = bucketed(np.linspace(0.001, 1.0, 1000), LATENCY_BOUNDS)
    p50, p95, p99 = percentiles(LATENCY_BOUNDS, counts)
    assert 0.25 < p50 <= 0.5
    assert 0.5 < p95 <= 1.0
    assert p95 < p99 <= 1.0
    assert percentiles(LATENCY_BOUNDS, [0] * 12) == (None, None, None)


@pytest.mark.parametrize(
    ("bounds", "counts", "q", "message"),
    [
        ([1.0, 2.0], [1, 2], 0.5, "needs 3 counts"),
        ([2.0, 1.0], [1, 2, 3], 0.5, "strictly increasing"),
        ([1.0, math.inf], [1, 2, 3], 0.5, "finite"),
        ([1.0], [1, -2], 0.5, "negative"),
        ([1.0], [1, 2], 1.5, "between 0 and 1"),
        ([1.0], [1, 2], math.nan, "between 0 and 1"),
    ],
)
def test_bad_histograms_are_clear_errors(bounds, counts, q, message):
    with pytest.raises(ValueError, match=message):
        quantile(bounds, counts, q)


@given(bounds=bounds_strategy, a=observations_strategy, b=observations_strategy)
def test_merge_with_same_bounds_equals_bucketing_the_union(bounds, a, b):
    merged_bounds, merged_counts = merge(bounds, bucketed(a, bounds), bounds, bucketed(b, bounds))

    assert merged_bounds == bounds
    assert merged_counts == bucketed(a + b, bounds)


@given(a_bounds=bounds_strategy, b_bounds=bounds_strategy, a=observations_strategy, b=observations_strategy)
def test_merge_with_different_bounds_keeps_every_observation_under_its_upper_bound(a_bounds, b_bounds, a, b):
    assume(a_bounds != b_bounds)
    union = sorted(set(a_bounds) | set(b_bounds))

    merged_bounds, merged_counts = merge(a_bounds, bucketed(a, a_bounds), b_bounds, bucketed(b, b_bounds))

    assert merged_bounds == union
    assert sum(merged_counts) == len(a) + len(b)
    # At each of a's bounds the merged "observations <= bound" is exact for a, and for b it is exact at
    # b's largest bound not above it (b's buckets land on their own upper bounds).
    cumulative = np.cumsum(merged_counts)
    for bound in a_bounds:
        b_bound = max((c for c in b_bounds if c <= bound), default=-math.inf)
        expected = sum(x <= bound for x in a) + sum(x <= b_bound for x in b)
        assert cumulative[union.index(bound)] == expected


def test_merge_hand_example():
    assert merge([1.0, 2.0], [1, 1, 1], [1.5, 2.0], [2, 2, 2]) == ([1.0, 1.5, 2.0], [1, 2, 3, 3])


def test_exponential_buckets_become_explicit_bounds():
    # scale 0: base 2, bucket index i covers (2**i, 2**(i+1)]
    bounds, counts = from_exponential(
        scale=0, zero_count=1, positive_offset=0, positive_counts=[1, 2, 3], negative_counts=[2]
    )
    assert bounds == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert counts == [3, 0, 1, 2, 3, 0]  # zero bucket takes the negatives; (0, 1] is empty


def test_exponential_offset_and_scale():
    bounds, counts = from_exponential(
        scale=1, zero_count=0, positive_offset=4, positive_counts=[5, 0, 5], negative_counts=[]
    )
    assert bounds == pytest.approx([0.0, 4.0, 4 * 2**0.5, 8.0, 8 * 2**0.5])
    assert counts == [0, 0, 5, 0, 5, 0]
    bounds, _ = from_exponential(
        scale=-1, zero_count=0, positive_offset=-1, positive_counts=[1], negative_counts=[]
    )
    assert bounds == pytest.approx([0.0, 0.25, 1.0])  # scale -1: base 4


def test_exponential_without_positive_buckets_has_only_the_zero_bucket():
    assert from_exponential(3, 4, 0, [], []) == ([0.0], [4, 0])
    assert quantile(*from_exponential(3, 4, 0, [], []), 0.5) == 0.0


def test_exponential_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="out of range"):
        from_exponential(0, 0, 5000, [1], [])


@given(
    scale=st.integers(min_value=-2, max_value=6),
    observations=st.lists(st.floats(min_value=1e-3, max_value=1e5), min_size=1, max_size=200),
    q=q_strategy,
)
def test_exponential_quantile_lies_in_the_bucket_of_the_exact_quantile(scale, observations, q):
    base = 2 ** (2**-scale)
    indexes = [math.ceil(math.log(x, base)) - 1 for x in observations]  # base**i < x <= base**(i+1)
    offset = min(indexes)
    positive_counts = np.bincount([i - offset for i in indexes]).tolist()
    exact = float(np.quantile(observations, q, method="inverted_cdf"))
    exact_index = math.ceil(math.log(exact, base)) - 1

    estimate = quantile(*from_exponential(scale, 0, offset, positive_counts, []), q)

    assert base**exact_index * (1 - 1e-9) <= estimate <= base ** (exact_index + 1) * (1 + 1e-9)


@given(a=observations_strategy, b=observations_strategy)
def test_exponential_histograms_of_different_scales_merge(a, b):
    first = from_exponential(0, 0, -20, bucketed(a, [2.0**i for i in range(-20, 16)])[1:-1], [])
    second = from_exponential(1, 0, -40, bucketed(b, [2.0 ** (i / 2) for i in range(-40, 31)])[1:-1], [])
    bounds, counts = merge(*first, *second)
    assert sum(counts) == sum(first[1]) + sum(second[1])
    assert bounds == sorted(set(first[0]) | set(second[0]))
