"""The load profiles of observability contract section 11, as data.

Rates are daily averages; the platform follows a diurnal curve whose mean over a UTC day is the
average and whose maximum is the peak (see `load_factor`).
"""

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache


@dataclass(frozen=True)
class Incident:
    """The `storm` incident: a window during which the platform degrades."""

    starts_after: timedelta
    duration: timedelta
    server_error_ratio: float
    latency_multiplier: float
    error_logs_per_second: float
    voice_packet_loss_pct: float


@dataclass(frozen=True)
class Profile:
    name: str
    daily_active_users: int
    api_requests_per_second_avg: float
    api_requests_per_second_peak: float
    routes: int
    ws_connections: int
    ws_messages_per_second: float
    voice_sessions: int
    warn_error_logs_per_second: float
    db_pool_max: int
    process_memory_limit_bytes: int
    voice_sample_interval_seconds: float = 60.0
    baseline_server_error_ratio: float = 0.003
    peak_hour_utc: float = 18.0
    incident: Incident | None = None

    @property
    def peak_to_average(self) -> float:
        return self.api_requests_per_second_peak / self.api_requests_per_second_avg

    def load_factor(self, at: datetime) -> float:
        """Multiplier of the average rates at `at`: mean 1 over a UTC day, maximum = peak / average."""
        concentration = _concentration_for_peak(self.peak_to_average)
        hour = at.hour + at.minute / 60 + at.second / 3600
        angle = 2 * math.pi * (hour - self.peak_hour_utc) / 24
        return math.exp(concentration * math.cos(angle)) / _bessel_i0(concentration)

    def api_requests_per_second(self, at: datetime) -> float:
        return self.api_requests_per_second_avg * self.load_factor(at)


STORM_INCIDENT = Incident(
    starts_after=timedelta(minutes=1),
    duration=timedelta(minutes=10),
    server_error_ratio=0.20,
    latency_multiplier=10.0,
    error_logs_per_second=500.0,
    voice_packet_loss_pct=8.0,
)

_GIB = 1024**3

LIGHT = Profile(
    name="light",
    daily_active_users=1_000,
    api_requests_per_second_avg=20,
    api_requests_per_second_peak=60,
    routes=40,
    ws_connections=200,
    ws_messages_per_second=200,
    voice_sessions=20,
    warn_error_logs_per_second=0.2,
    db_pool_max=20,
    process_memory_limit_bytes=1 * _GIB,
)

HEAVY = Profile(
    name="heavy",
    daily_active_users=10_000,
    api_requests_per_second_avg=200,
    api_requests_per_second_peak=600,
    routes=40,
    ws_connections=2_000,
    ws_messages_per_second=2_000,
    voice_sessions=300,
    warn_error_logs_per_second=2,
    db_pool_max=60,
    process_memory_limit_bytes=4 * _GIB,
)

STORM = replace(HEAVY, name="storm", incident=STORM_INCIDENT)

PROFILES: dict[str, Profile] = {profile.name: profile for profile in (LIGHT, HEAVY, STORM)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def _bessel_i0(x: float) -> float:
    term, total, k = 1.0, 1.0, 1
    while term > 1e-12 * total:
        term *= (x / (2 * k)) ** 2
        total += term
        k += 1
    return total


@lru_cache
def _concentration_for_peak(peak_to_average: float) -> float:
    """Solve exp(k) / I0(k) = peak_to_average by bisection (the ratio grows monotonically with k)."""
    if peak_to_average <= 1:
        return 0.0
    low, high = 0.0, 50.0
    for _ in range(60):
        middle = (low + high) / 2
        if math.exp(middle) / _bessel_i0(middle) < peak_to_average:
            low = middle
        else:
            high = middle
    return (low + high) / 2
