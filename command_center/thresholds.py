"""Thresholds, status colours and the Voice Health Score (observability contract section 10).

The read side's half of the contract: only command_center judges values against thresholds, so this lives
here, not in telemetry/contract.py (names, labels, privacy and logs, which the write side needs).
The effective thresholds are the defaults overridden by `COMMAND_CENTER_*_WARN/_CRIT` variables, read once
at start-up into `settings.COMMAND_CENTER_THRESHOLD_ENV` (see `thresholds()`); the system check
(command_center.checks) reports a bad value at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from django.conf import settings

THRESHOLD_ENV_PREFIX = "COMMAND_CENTER_"


class Status(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True)
class Threshold:
    """Green/yellow/red edges of one signal: `warn` is where yellow starts, `crit` where red starts."""

    key: str
    label: str
    unit: str
    warn: float
    crit: float
    higher_is_worse: bool
    env_warn: str
    env_crit: str


def _threshold(
    key: str,
    label: str,
    unit: str,
    warn: float,
    crit: float,
    env_warn: str,
    env_crit: str,
    higher_is_worse: bool = True,
) -> Threshold:
    return Threshold(
        key,
        label,
        unit,
        warn,
        crit,
        higher_is_worse,
        THRESHOLD_ENV_PREFIX + env_warn,
        THRESHOLD_ENV_PREFIX + env_crit,
    )


DEFAULT_THRESHOLDS: Mapping[str, Threshold] = {
    t.key: t
    for t in (
        _threshold(
            "api_latency_p95_ms",
            "API p95 latency",
            "ms",
            200,
            1000,
            "API_LATENCY_P95_WARN_MS",
            "API_LATENCY_P95_CRIT_MS",
        ),
        _threshold(
            "api_error_rate_pct",
            "API error rate (5xx)",
            "%",
            1,
            5,
            "API_ERROR_RATE_WARN_PCT",
            "API_ERROR_RATE_CRIT_PCT",
        ),
        _threshold("db_pool_pct", "DB pool utilisation", "%", 70, 90, "DB_POOL_WARN_PCT", "DB_POOL_CRIT_PCT"),
        _threshold(
            "db_query_p95_ms", "DB query p95", "ms", 100, 500, "DB_QUERY_P95_WARN_MS", "DB_QUERY_P95_CRIT_MS"
        ),
        _threshold(
            "voice_join_success_pct",
            "Voice join success",
            "%",
            95,
            80,
            "VOICE_JOIN_SUCCESS_WARN_PCT",
            "VOICE_JOIN_SUCCESS_CRIT_PCT",
            higher_is_worse=False,
        ),
        _threshold(
            "voice_packet_loss_p95_pct",
            "Voice packet loss p95",
            "%",
            2,
            5,
            "VOICE_PACKET_LOSS_P95_WARN_PCT",
            "VOICE_PACKET_LOSS_P95_CRIT_PCT",
        ),
        _threshold(
            "voice_jitter_p95_ms",
            "Voice jitter p95",
            "ms",
            30,
            100,
            "VOICE_JITTER_P95_WARN_MS",
            "VOICE_JITTER_P95_CRIT_MS",
        ),
        _threshold(
            "voice_crash_rate_pct",
            "Voice crash rate",
            "%",
            1,
            5,
            "VOICE_CRASH_RATE_WARN_PCT",
            "VOICE_CRASH_RATE_CRIT_PCT",
        ),
        _threshold(
            "otel_export_failure_pct",
            "OTel export failure rate",
            "%",
            1,
            5,
            "OTEL_EXPORT_FAILURE_WARN_PCT",
            "OTEL_EXPORT_FAILURE_CRIT_PCT",
        ),
        _threshold(
            "otel_dropped_spans",
            "OTel dropped spans (5 min)",
            "spans",
            1,
            100,
            "OTEL_DROPPED_SPANS_WARN",
            "OTEL_DROPPED_SPANS_CRIT",
        ),
        _threshold(
            "memory_pct", "Process memory (RSS)", "% of limit", 70, 90, "MEMORY_WARN_PCT", "MEMORY_CRIT_PCT"
        ),
    )
}


def _env_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw[:40]!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {raw[:40]!r}")
    return number


def load_thresholds(env: Mapping[str, str]) -> dict[str, Threshold]:
    """DEFAULT_THRESHOLDS overridden by `COMMAND_CENTER_*` variables; a bad number → ValueError naming it.

    A blank variable counts as unset. The order of warn and crit is checked by threshold_errors().
    """
    thresholds: dict[str, Threshold] = {}
    problems: list[str] = []
    for key, default in DEFAULT_THRESHOLDS.items():
        values = {}
        for field, name in (("warn", default.env_warn), ("crit", default.env_crit)):
            try:
                values[field] = _env_number(env, name, getattr(default, field))
            except ValueError as error:
                problems.append(str(error))
        if len(values) == 2:
            thresholds[key] = Threshold(**{**default.__dict__, **values})
    if problems:
        raise ValueError("; ".join(problems))
    return thresholds


def thresholds() -> dict[str, Threshold]:
    """The effective thresholds: `load_thresholds` of the `COMMAND_CENTER_*` variables the settings read at
    start-up (`settings.COMMAND_CENTER_THRESHOLD_ENV`); parsed once per distinct set of values."""
    return dict(_loaded(tuple(sorted(settings.COMMAND_CENTER_THRESHOLD_ENV.items()))))


@lru_cache(maxsize=8)
def _loaded(variables: tuple[tuple[str, str], ...]) -> dict[str, Threshold]:
    return load_thresholds(dict(variables))


def threshold_errors(thresholds: Mapping[str, Threshold]) -> list[str]:
    """One readable line per threshold whose warn value is not strictly on the green side of its crit."""
    errors = []
    for t in thresholds.values():
        if t.higher_is_worse and not t.warn < t.crit:
            errors.append(f"{t.env_warn}={t.warn:g} must be lower than {t.env_crit}={t.crit:g} ({t.label})")
        elif not t.higher_is_worse and not t.warn > t.crit:
            errors.append(f"{t.env_warn}={t.warn:g} must be higher than {t.env_crit}={t.crit:g} ({t.label})")
    return errors


def _checked_value(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{what} needs a number, got {value!r}")
    return float(value)


def status_for(value: float, threshold: Threshold) -> Status:
    """green before `warn`, yellow from `warn` up to and including `crit`, red beyond `crit`."""
    value = _checked_value(value, threshold.key)
    # Mirror lower-is-worse signals so one comparison serves both directions.
    sign = 1 if threshold.higher_is_worse else -1
    if sign * value < sign * threshold.warn:
        return Status.GREEN
    if sign * value <= sign * threshold.crit:
        return Status.YELLOW
    return Status.RED


def _health_fraction(value: float, threshold: Threshold) -> float:
    """s(x): 1 at or better than the green edge (warn), 0 at or worse than the red edge (crit), linear."""
    sign = 1 if threshold.higher_is_worse else -1
    badness, green_edge, red_edge = sign * value, sign * threshold.warn, sign * threshold.crit
    if badness <= green_edge:
        return 1.0
    if badness >= red_edge:
        return 0.0
    return (red_edge - badness) / (red_edge - green_edge)


VOICE_HEALTH_WEIGHTS: Mapping[str, int] = {
    "voice_join_success_pct": 40,
    "voice_packet_loss_p95_pct": 30,
    "voice_jitter_p95_ms": 20,
    "voice_crash_rate_pct": 10,
}


def voice_health_score(
    join_success_pct: float | None,
    packet_loss_p95_pct: float | None,
    jitter_p95_ms: float | None,
    crash_rate_pct: float | None,
    thresholds: Mapping[str, Threshold],
) -> tuple[float | None, dict[str, float]]:
    """The Voice Health Score 0..100 and its components (threshold key → s(x) in 0..1).

    An input without data (None) is left out and the remaining weights are scaled up to 100; with no data at
    all the score is None.
    """
    inputs = dict(
        zip(
            VOICE_HEALTH_WEIGHTS,
            (join_success_pct, packet_loss_p95_pct, jitter_p95_ms, crash_rate_pct),
            strict=True,
        )
    )
    components = {
        key: _health_fraction(_checked_value(value, key), thresholds[key])
        for key, value in inputs.items()
        if value is not None
    }
    if not components:
        return None, {}
    weight = sum(VOICE_HEALTH_WEIGHTS[key] for key in components)
    score = 100 * sum(VOICE_HEALTH_WEIGHTS[key] * fraction for key, fraction in components.items()) / weight
    return score, components
