"""Seeded random draws the simulator needs, in pure Python (no numpy at runtime).

Counts are drawn per step and per bucket rather than per event, so generating an hour of
`heavy` traffic costs the same as a second of it whenever individual spans are not wanted.
"""

import math
import random
from collections.abc import Sequence

_EXACT_LIMIT = 64
_NORMAL_APPROXIMATION_MEAN = 30.0


def poisson(rng: random.Random, mean: float) -> int:
    """Number of events of a Poisson process with this mean (normal approximation for large means)."""
    if mean <= 0:
        return 0
    if mean >= _NORMAL_APPROXIMATION_MEAN:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def binomial(rng: random.Random, trials: int, probability: float) -> int:
    """Successes among `trials` independent trials."""
    if trials <= 0 or probability <= 0:
        return 0
    if probability >= 1:
        return trials
    if trials <= _EXACT_LIMIT:
        return sum(1 for _ in range(trials) if rng.random() < probability)
    if probability > 0.5:
        return trials - binomial(rng, trials, 1 - probability)
    mean = trials * probability
    if mean < _NORMAL_APPROXIMATION_MEAN:
        return min(trials, poisson(rng, mean))
    drawn = round(rng.gauss(mean, math.sqrt(mean * (1 - probability))))
    return min(trials, max(0, drawn))


def multinomial(rng: random.Random, trials: int, probabilities: Sequence[float]) -> list[int]:
    """Split `trials` over categories; the result always sums to `trials`."""
    counts = [0] * len(probabilities)
    remaining, remaining_mass = trials, 1.0
    for index, probability in enumerate(probabilities[:-1]):
        if remaining == 0:
            break
        share = min(1.0, probability / remaining_mass) if remaining_mass > 0 else 0.0
        counts[index] = binomial(rng, remaining, share)
        remaining -= counts[index]
        remaining_mass -= probability
    counts[-1] += remaining
    return counts


def lognormal_cdf(value: float, median: float, sigma: float) -> float:
    if value <= 0:
        return 0.0
    return 0.5 * (1 + math.erf(math.log(value / median) / (sigma * math.sqrt(2))))


def bucket_probabilities(
    bounds: Sequence[float], components: Sequence[tuple[float, float, float]]
) -> list[float]:
    """Probability of each explicit bucket (len(bounds) + 1, last = +Inf) for a lognormal mixture.

    `components` are (weight, median, sigma); weights must sum to 1.
    """
    cumulative = [
        sum(weight * lognormal_cdf(bound, median, sigma) for weight, median, sigma in components)
        for bound in bounds
    ]
    edges = [0.0, *cumulative, 1.0]
    return [max(0.0, upper - lower) for lower, upper in zip(edges, edges[1:], strict=False)]


def value_in_bucket(rng: random.Random, bounds: Sequence[float], index: int) -> float:
    """A value inside bucket `index` (lower bound exclusive, upper inclusive, as OTLP defines it)."""
    lower = bounds[index - 1] if index > 0 else 0.0
    if index < len(bounds):
        return lower + (bounds[index] - lower) * (1.0 - rng.random())
    return lower * (1.0 + rng.expovariate(2.0))
