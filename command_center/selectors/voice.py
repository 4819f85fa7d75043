"""The voice tab: live gauges, join success, crash rate, quality percentiles and the Voice Health Score.

One definition per number. Every place that shows one of these numbers (the voice tab summary, the voice
pulse push, the Voice SFU probe, the alerts, the trend charts) calls the one function below that defines it,
and says over which window it is:

- **join success** (`join_success`): successful joins / all joins of `kaiku_voice_joins_total{outcome}` over
  the window, a ratio of sums (never an average of per-minute percentages). The headline window is 1 h
  (`HEADLINE_WINDOW`): pulse, probe, alerts and the health score; the tab also keeps a 24 h figure.
- **crash rate** (`crash_rate`): crashed / all ended sessions of `kaiku_voice_sessions_ended_total{outcome}`,
  the same way and over the same windows.
- **active rooms / active sessions** (`active_rooms`, `active_sessions`): the value of the gauge in its
  newest stored minute (the last export of that minute), if that minute is at most 5 minutes old.
- **participants per room** (`participants_per_room`): the rooms of that same minute by their size; see there.

The charts of join success and crash rate (`share_series`, used by `trends.trend`) add the same sums per bin,
so the ratio over the chart's window is the card's figure for that window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from command_center.selectors import metrics
from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.freshness import SAMPLE, freshness, newest, sample_freshness
from command_center.thresholds import VOICE_HEALTH_WEIGHTS, status_for, thresholds, voice_health_score
from telemetry.contract import Label, Metric
from telemetry.queries import voice as voice_queries

GAUGE_FRESHNESS = timedelta(minutes=5)
QUALITY_WINDOW = timedelta(hours=1)
QUALITY_NAMES = ("poor", "fair", "good", "excellent")  # connection_metrics.quality 0..3
# The window of the join success and crash rate shown as "now": pulse, probe, alerts, health score.
HEADLINE_WINDOW = timedelta(hours=1)
DAY_WINDOW = timedelta(hours=24)
LATEST_MINUTE_LABEL = "latest minute"


# --- shares of a counter's outcomes: join success, crash rate ----------------------------------------------


@dataclass(frozen=True)
class ShareDefinition:
    """`outcome` events as a share of all events of a counter split by `outcome`."""

    key: str  # the name of the figure ("join_success", "crash_rate")
    title: str
    metric: Metric
    outcome: str


JOIN_SUCCESS = ShareDefinition("join_success", "join success", Metric.VOICE_JOINS_TOTAL, "success")
CRASH_RATE = ShareDefinition("crash_rate", "crash rate", Metric.VOICE_SESSIONS_ENDED_TOTAL, "crash")
SHARES_BY_METRIC: dict[str, ShareDefinition] = {share.metric.value: share for share in (JOIN_SUCCESS, CRASH_RATE)}


@dataclass(frozen=True)
class Share:
    """A share over [start, end): `part` of `whole` events, in percent (None without events)."""

    definition: ShareDefinition
    part: float
    whole: float
    start: datetime
    end: datetime

    @property
    def value(self) -> float | None:
        return metrics.ratio_pct(self.part, self.whole)

    @property
    def window_seconds(self) -> int:
        return round((self.end - self.start).total_seconds())

    @property
    def window_label(self) -> str:
        return metrics.window_label(self.window_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": "%",
            "window_seconds": self.window_seconds,
            "window_label": self.window_label,
            "part": self.part,
            "whole": self.whole,
        }

    def text(self) -> str:
        """E.g. "join success 94.7% (1 h)", as the probe detail shows it."""
        value = self.value
        shown = f"{value:.1f}%" if value is not None else "n/a (none)"
        return f"{self.definition.title} {shown} ({self.window_label})"


def _share_sums(
    definition: ShareDefinition, start: datetime, end: datetime, step_seconds: int | None, use_rollup: bool | None
) -> dict[int | None, tuple[float, float]]:
    """(part, whole) per bin (None without `step_seconds`): the sums every share figure and chart is made of."""
    if use_rollup is None:
        use_rollup = metrics.reads_rollup(start, end)
    aggs = metrics.aggregate(
        definition.metric, start, end, group_label=Label.OUTCOME, step_seconds=step_seconds, use_rollup=use_rollup
    )
    sums: dict[int | None, tuple[float, float]] = {}
    for (bin_start, outcome), agg in aggs.items():
        part, whole = sums.get(bin_start, (0.0, 0.0))
        # Every event counts in the whole, also one whose outcome is missing (folded into the overflow set).
        sums[bin_start] = (part + (agg.total if outcome == definition.outcome else 0.0), whole + agg.total)
    return sums


def share(definition: ShareDefinition, start: datetime, end: datetime, use_rollup: bool | None = None) -> Share:
    """The share of `definition` over [start, end): the ratio of the summed counts, not of per-minute ratios."""
    part, whole = _share_sums(definition, start, end, None, use_rollup).get(None, (0.0, 0.0))
    return Share(definition, part, whole, start, end)


def join_success(window: timedelta = HEADLINE_WINDOW, now: datetime | None = None) -> Share:
    """Voice join success over the `window` ending `now`: success joins / all joins, in percent."""
    now = now or timezone.now()
    return share(JOIN_SUCCESS, now - window, now)


def crash_rate(window: timedelta = HEADLINE_WINDOW, now: datetime | None = None) -> Share:
    """Voice session crash rate over the `window` ending `now`: crashed / all ended sessions, in percent."""
    now = now or timezone.now()
    return share(CRASH_RATE, now - window, now)


def join_success_rate_pct(window: timedelta, now: datetime | None = None) -> float | None:
    """`join_success(window, now).value` (for callers that need only the number, e.g. the alerts)."""
    return join_success(window, now).value


def crash_rate_pct(window: timedelta, now: datetime | None = None) -> float | None:
    """`crash_rate(window, now).value`."""
    return crash_rate(window, now).value


def share_series(
    definition: ShareDefinition, start: datetime, end: datetime, step_seconds: int, use_rollup: bool | None = None
) -> dict[str, Any]:
    """The chart of a share: per bin the ratio of that bin's sums (not an average of per-minute percentages),
    and over the whole window the ratio of all the bins' sums, which is `share(definition, start, end)`."""
    sums = _share_sums(definition, start, end, step_seconds, use_rollup)
    values, parts, wholes = [], [], []
    for moment in metrics.bins(start, end, step_seconds):
        part, whole = sums.get(metrics.bin_key(moment), (0.0, 0.0))
        values.append(metrics.ratio_pct(part, whole))
        parts.append(part)
        wholes.append(whole)
    window = Share(definition, sum(parts), sum(wholes), start, end)
    return {
        "name": f"{definition.key}_pct",
        "title": definition.title,
        "values": values,
        "parts": parts,
        "wholes": wholes,
        **window.as_dict(),
    }


# --- gauges at the latest minute: active rooms, active sessions, participants per room ----------------------


@dataclass(frozen=True)
class Reading:
    """A gauge's value in its newest stored minute (`minute`: that minute's start), None when that minute is
    older than `GAUGE_FRESHNESS`. The value is the minute's last export (contract section 3.1)."""

    value: float | None
    minute: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "as_of": self.minute,
            "window_seconds": int(SAMPLE.total_seconds()),
            "window_label": LATEST_MINUTE_LABEL,
            "max_age_seconds": int(GAUGE_FRESHNESS.total_seconds()),
        }


def _reading(metric: str, now: datetime) -> Reading:
    latest = metrics.latest_gauge(metric, now - GAUGE_FRESHNESS)
    return Reading(latest[0], latest[1]) if latest else Reading(None, None)


def active_rooms(now: datetime | None = None) -> Reading:
    """Active voice rooms: `kaiku_voice_rooms_active` in its newest minute (≤ 5 min old)."""
    return _reading(Metric.VOICE_ROOMS_ACTIVE, now or timezone.now())


def active_sessions(now: datetime | None = None) -> Reading:
    """Active voice sessions (participants in rooms): `kaiku_voice_sessions_active` in its newest minute."""
    return _reading(Metric.VOICE_SESSIONS_ACTIVE, now or timezone.now())


def _apportion(counts: list[int], total: int) -> list[int]:
    """`counts` scaled to add up to `total`, in whole numbers (largest remainder; ties to the lower bucket)."""
    whole = sum(counts)
    if whole <= 0 or total <= 0:
        return [0] * len(counts)
    exact = [count * total / whole for count in counts]
    result = [math.floor(value + 1e-9) for value in exact]
    remainders = sorted(range(len(counts)), key=lambda index: (-(exact[index] - result[index]), index))
    for index in remainders[: max(0, total - sum(result))]:
        result[index] += 1
    return result


def participants_per_room(now: datetime | None = None) -> dict[str, Any]:
    """How many rooms have how many participants, at the moment `active_rooms` describes: its buckets add up
    to the active rooms of that same minute.

    What the platform sends: `kaiku_voice_room_participants` is a cumulative histogram into which the SFU
    records every active room's size at every export (every 10 s). A stored minute holds the increase over the
    minute, i.e. each room once per export of that minute: 5–6 times the rooms. That minute total is a count
    of "room-exports", not of rooms; shown next to "11 active rooms" it read 55–66.

    What an SRE expects next to the active-rooms figure is a snapshot: "of the 11 rooms now, 3 have 2 people,
    ...". Minute storage cannot single out the minute's last export, so the snapshot is the minute's room-size
    mix (its bucket shares) applied to the rooms active at that minute's last export (`active_rooms`), in whole
    rooms. While rooms do not change size within the minute (the usual case) this is exactly the last export;
    otherwise it is that minute's mix. `p50`/`p95` are percentiles of participants per room in that minute,
    straight from its buckets (the trend chart's value for that minute). Buckets: `le` = upper bound (None =
    +Inf), counts non-cumulative. Empty when no fresh rooms figure or no histogram of that minute exists.
    """
    rooms = active_rooms(now)
    result: dict[str, Any] = {
        "rooms": rooms.value,
        "buckets": [],
        "p50": None,
        "p95": None,
        **{key: value for key, value in rooms.as_dict().items() if key != "value"},
        "window_label": f"rooms at the {LATEST_MINUTE_LABEL}",
    }
    if rooms.minute is None:
        return result
    agg = metrics.total(Metric.VOICE_ROOM_PARTICIPANTS, rooms.minute, rooms.minute + SAMPLE)
    if agg.counts is None or agg.bounds is None:
        return result
    counts = _apportion(agg.counts, round(rooms.value or 0))
    result["buckets"] = [
        {"le": bound, "count": count} for bound, count in zip([*agg.bounds, None], counts, strict=True)
    ]
    result["p50"], result["p95"] = agg.quantile(0.5), agg.quantile(0.95)
    return result


# --- what the voice tab, the pulse and the health score show -------------------------------------------------


def quality_p95(start: datetime, end: datetime) -> dict[str, float | None]:
    """p95 of packet loss (%) and jitter (ms) over the raw connection_metrics rows of the window."""
    loss, jitter, last_ts = voice_queries.quality_p95(start, end)
    return {"packet_loss_p95_pct": loss, "jitter_p95_ms": jitter, "last_ts": last_ts}


def voice_pulse(now: datetime | None = None) -> dict[str, Any]:
    """The live voice numbers pushed every 5 s: active_sessions, active_rooms, join_success_rate_1h, and in
    `figures` each of them with its window (the push message carries the three numbers)."""
    now = now or timezone.now()
    sessions, rooms, joins = active_sessions(now), active_rooms(now), join_success(HEADLINE_WINDOW, now)
    return {
        "active_sessions": sessions.value,
        "active_rooms": rooms.value,
        "join_success_rate_1h": joins.value,
        "figures": {
            "active_sessions": sessions.as_dict(),
            "active_rooms": rooms.as_dict(),
            "join_success_rate_1h": joins.as_dict(),
        },
    }


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


def voice_summary(now: datetime | None = None) -> dict[str, Any]:
    """The voice tab's numbers. Flat keys as before; `figures[<flat key>]` tells each one's window.

    The health score takes join success, crash rate and the quality p95s over the same hour as the alerts
    (`HEADLINE_WINDOW`), so a component never contradicts the alert of the same threshold.
    """
    now = now or timezone.now()
    sessions, rooms = active_sessions(now), active_rooms(now)
    joins_1h, crashes_1h = join_success(HEADLINE_WINDOW, now), crash_rate(HEADLINE_WINDOW, now)
    joins_24h, crashes_24h = join_success(DAY_WINDOW, now), crash_rate(DAY_WINDOW, now)
    participants = participants_per_room(now)
    quality = quality_p95(now - QUALITY_WINDOW, now)
    score = health_score(joins_1h.value, quality["packet_loss_p95_pct"], quality["jitter_p95_ms"], crashes_1h.value)
    score.update(window_seconds=int(HEADLINE_WINDOW.total_seconds()),
                 window_label=metrics.window_label(HEADLINE_WINDOW.total_seconds()))
    return {
        **sample_freshness(newest(sessions.minute, rooms.minute), REFRESH_SECONDS["voice"], now),
        "active_sessions": sessions.value,
        "active_rooms": rooms.value,
        "participants_per_room": participants["buckets"],
        "join_success_rate_1h": joins_1h.value,
        "join_success_rate_24h": joins_24h.value,
        "crash_rate_1h": crashes_1h.value,
        "crash_rate_24h": crashes_24h.value,
        "health_score": score,
        "figures": {
            "active_sessions": sessions.as_dict(),
            "active_rooms": rooms.as_dict(),
            "participants_per_room": participants,
            "join_success_rate_1h": joins_1h.as_dict(),
            "join_success_rate_24h": joins_24h.as_dict(),
            "crash_rate_1h": crashes_1h.as_dict(),
            "crash_rate_24h": crashes_24h.as_dict(),
        },
    }


def voice_quality(start: datetime, end: datetime, step_seconds: int) -> dict[str, Any]:
    """Per-step p50/p95 of packet loss, jitter and latency and quality-score counts (connection_metrics)."""
    rows = voice_queries.quality_bins(start, end, step_seconds, metrics.BIN_ORIGIN)
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


# --- the worst sessions of a window (issue 16, part 4) ---------------------------------------------------------

def worst_sessions(start: datetime, end: datetime, step_seconds: int, sort: str = "packet_loss", limit: int = 10,
                   now: datetime | None = None) -> dict[str, Any]:
    """The `limit` sessions of [start, end) with the highest p95 of `sort` over their own rows in the window.

    Per session: p95 (percentile_cont, as the tab's charts) of packet loss (%), jitter and latency (ms), the
    worst quality score (0 poor .. 3 excellent) and the number of measurements; `timeline`: per bin of
    `step_seconds` (the quality chart's step) the mean loss, jitter and latency and the worst quality, bins with
    measurements only; from `connection_sessions` its outcome (`normal`, `crash`, `ongoing` while it has no end,
    `unknown` without a session row) and duration (to now while ongoing). The contract forbids linking a session
    to a user: the session's random uuid is all that identifies it, and nothing else is read.
    """
    now = now or timezone.now()
    ranked, timelines, sessions = voice_queries.worst_sessions(start, end, step_seconds, metrics.BIN_ORIGIN, sort,
                                                               limit)
    items = []
    for session_id, loss, jitter, latency, quality, samples, first_ts, last_ts, _ in ranked:
        started_at, ended_at, outcome = sessions.get(session_id, (None, None, None))
        if started_at is None:
            outcome, duration = "unknown", None
        elif ended_at is None:
            outcome, duration = "ongoing", (now - started_at).total_seconds()
        else:
            outcome, duration = outcome or "unknown", (ended_at - started_at).total_seconds()
        timeline = timelines[session_id]
        items.append({
            "session_id": str(session_id),
            "packet_loss_p95_pct": loss,
            "jitter_p95_ms": jitter,
            "latency_p95_ms": latency,
            "worst_quality": QUALITY_NAMES[quality] if quality is not None else None,
            "samples": samples,
            "first_ts": first_ts,
            "last_ts": last_ts,
            "started_at": started_at,
            "ended_at": ended_at,
            "outcome": outcome,
            "duration_seconds": duration,
            "timeline": {
                "timestamps": [int(point[0].timestamp()) for point in timeline],
                "packet_loss_pct": [point[1] for point in timeline],
                "jitter_ms": [point[2] for point in timeline],
                "latency_ms": [point[3] for point in timeline],
                "quality": [point[4] for point in timeline],
            },
        })
    return {
        **freshness(max((item["last_ts"] for item in items), default=None), REFRESH_SECONDS["voice"], now),
        "sort": sort,
        "measure": "p95 over the session's measurements in the window",
        "sessions": items,
    }
