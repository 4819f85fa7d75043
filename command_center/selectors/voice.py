"""The voice tab: live gauges, join success, crash rate, quality percentiles and the Voice Health Score."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from command_center.selectors import metrics
from command_center.selectors.config import REFRESH_SECONDS, thresholds
from command_center.selectors.freshness import freshness, newest, sample_freshness
from kaiku_ops.db_routers import read_alias
from telemetry.contract import VOICE_HEALTH_WEIGHTS, Label, Metric, status_for, voice_health_score
from telemetry.voice import voice_alias

GAUGE_FRESHNESS = timedelta(minutes=5)
QUALITY_WINDOW = timedelta(hours=1)
QUALITY_NAMES = ("poor", "fair", "good", "excellent")  # connection_metrics.quality 0..3


def _voice_read_alias() -> str:
    # Our own copies of the voice tables follow the dashboard read routing; the platform's do not.
    alias = voice_alias()
    return read_alias() if alias == "default" else alias


def _outcome_rate_pct(metric: str, outcome: str, start: datetime, end: datetime) -> float | None:
    per_outcome = metrics.by_label(metric, Label.OUTCOME, start, end)
    whole = sum(agg.total for agg in per_outcome.values())
    part = per_outcome[outcome].total if outcome in per_outcome else 0.0
    return metrics.ratio_pct(part, whole)


def join_success_rate_pct(window: timedelta, now: datetime | None = None) -> float | None:
    now = now or timezone.now()
    return _outcome_rate_pct(Metric.VOICE_JOINS_TOTAL, "success", now - window, now)


def crash_rate_pct(window: timedelta, now: datetime | None = None) -> float | None:
    now = now or timezone.now()
    return _outcome_rate_pct(Metric.VOICE_SESSIONS_ENDED_TOTAL, "crash", now - window, now)


def quality_p95(start: datetime, end: datetime) -> dict[str, float | None]:
    """p95 of packet loss (%) and jitter (ms) over the raw connection_metrics rows of the window."""
    with connections[_voice_read_alias()].cursor() as cursor:
        cursor.execute(
            """SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY packet_loss),
                      percentile_cont(0.95) WITHIN GROUP (ORDER BY jitter_ms), max(ts)
               FROM connection_metrics WHERE ts >= %s AND ts < %s""",
            [start, end],
        )
        loss, jitter, last_ts = cursor.fetchone()
    return {"packet_loss_p95_pct": loss, "jitter_p95_ms": jitter, "last_ts": last_ts}


def _gauge_value(metric: str, now: datetime) -> tuple[float | None, datetime | None]:
    latest = metrics.latest_gauge(metric, now - GAUGE_FRESHNESS)
    return (latest[0], latest[1]) if latest else (None, None)


def voice_pulse() -> dict[str, float | None]:
    """The live voice numbers pushed every 5 s: active_sessions, active_rooms, join_success_rate_1h."""
    now = timezone.now()
    return {
        "active_sessions": _gauge_value(Metric.VOICE_SESSIONS_ACTIVE, now)[0],
        "active_rooms": _gauge_value(Metric.VOICE_ROOMS_ACTIVE, now)[0],
        "join_success_rate_1h": join_success_rate_pct(timedelta(hours=1), now),
    }


def _participants_distribution(now: datetime) -> list[dict[str, Any]]:
    """The newest minute's participants-per-room histogram as [{le, count}] (le None = +Inf)."""
    newest_ts = metrics.newest_sample_ts(Metric.VOICE_ROOM_PARTICIPANTS)
    if newest_ts is None or newest_ts < now - GAUGE_FRESHNESS:
        return []
    agg = metrics.total(Metric.VOICE_ROOM_PARTICIPANTS, newest_ts, newest_ts + timedelta(minutes=1))
    if agg.counts is None:
        return []
    upper_bounds = [*agg.bounds, None]
    return [{"le": bound, "count": count} for bound, count in zip(upper_bounds, agg.counts, strict=True)]


def health_score(
    join_success_pct: float | None,
    packet_loss_p95_pct: float | None,
    jitter_p95_ms: float | None,
    crash_pct: float | None,
) -> dict[str, Any]:
    limits = thresholds()
    values = dict(
        zip(
            VOICE_HEALTH_WEIGHTS,
            (join_success_pct, packet_loss_p95_pct, jitter_p95_ms, crash_pct),
            strict=True,
        )
    )
    score, components = voice_health_score(*values.values(), limits)
    # The score is coloured like a success rate: 95+ green, 80+ yellow (same edges as join success).
    status = status_for(score, limits["voice_join_success_pct"]).value if score is not None else None
    return {
        "score": score,
        "status": status,
        "components": {
            key: {"value": values[key], "score": components.get(key), "weight": VOICE_HEALTH_WEIGHTS[key]}
            for key in VOICE_HEALTH_WEIGHTS
        },
    }


def voice_summary() -> dict[str, Any]:
    now = timezone.now()
    sessions, sessions_ts = _gauge_value(Metric.VOICE_SESSIONS_ACTIVE, now)
    rooms, rooms_ts = _gauge_value(Metric.VOICE_ROOMS_ACTIVE, now)
    day = timedelta(hours=24)
    join_success = join_success_rate_pct(day, now)
    crashes = crash_rate_pct(day, now)
    quality = quality_p95(now - QUALITY_WINDOW, now)
    updated_at = newest(sessions_ts, rooms_ts)
    return {
        **sample_freshness(updated_at, REFRESH_SECONDS["voice"], now),
        "active_sessions": sessions,
        "active_rooms": rooms,
        "participants_per_room": _participants_distribution(now),
        "join_success_rate_24h": join_success,
        "crash_rate_24h": crashes,
        "health_score": health_score(
            join_success, quality["packet_loss_p95_pct"], quality["jitter_p95_ms"], crashes
        ),
    }


def voice_quality(start: datetime, end: datetime, step_seconds: int) -> dict[str, Any]:
    """Per-step p50/p95 of packet loss, jitter and latency and quality-score counts (connection_metrics)."""
    with connections[_voice_read_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT date_bin(make_interval(secs => %s::double precision), ts, %s) AS bin,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY packet_loss),
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY jitter_ms),
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY latency_ms),
                       {", ".join(f"count(*) FILTER (WHERE quality = {q})" for q in range(4))}, max(ts)
                FROM connection_metrics WHERE ts >= %s AND ts < %s
                GROUP BY 1""",
            [step_seconds, metrics.BIN_ORIGIN, start, end],
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    timestamps = metrics.bins(start, end, step_seconds)
    series: dict[str, dict[str, list]] = {
        name: {"p50": [], "p95": []} for name in ("packet_loss_pct", "jitter_ms", "latency_ms")
    }
    quality: dict[str, list[int | None]] = {name: [] for name in QUALITY_NAMES}
    for moment in timestamps:
        row = rows.get(moment)
        for offset, name in enumerate(("packet_loss_pct", "jitter_ms", "latency_ms"), start=1):
            pair = row[offset] if row else None
            series[name]["p50"].append(pair[0] if pair else None)
            series[name]["p95"].append(pair[1] if pair else None)
        for index, name in enumerate(QUALITY_NAMES):
            quality[name].append(row[4 + index] if row else None)
    last_ts = max((row[-1] for row in rows.values()), default=None)
    now = timezone.now()
    return {
        **freshness(last_ts, REFRESH_SECONDS["voice"], now),
        "timestamps": [int(moment.timestamp()) for moment in timestamps],
        **series,
        "quality": quality,
        "quality_totals": {name: sum(count or 0 for count in quality[name]) for name in QUALITY_NAMES},
    }
