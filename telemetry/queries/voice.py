"""Voice quality measurements (`connection_metrics`) and sessions (`connection_sessions`), read where the voice
tables are (`telemetry.voice.voice_alias`: our own copies follow the dashboard read routing, the platform's
database does not).

Rows stay plain tuples, in the order each function's docstring gives: the selectors shape them into panels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connections

from kaiku_ops.db_routers import read_alias
from telemetry.models import ConnectionMetric, ConnectionSession
from telemetry.voice import voice_alias

METRICS_TABLE = ConnectionMetric._meta.db_table
SESSIONS_TABLE = ConnectionSession._meta.db_table
# What a session can be ranked by (`worst_sessions`) -> the measurement column.
RANK_COLUMNS = {"packet_loss": "packet_loss", "jitter": "jitter_ms", "latency": "latency_ms"}


def _alias() -> str:
    alias = voice_alias()
    return read_alias() if alias == "default" else alias


def quality_p95(start: datetime, end: datetime) -> tuple[float | None, float | None, datetime | None]:
    """(p95 of packet loss %, p95 of jitter ms, newest measurement) over the measurements of [start, end)."""
    with connections[_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY packet_loss),
                      percentile_cont(0.95) WITHIN GROUP (ORDER BY jitter_ms), max(ts)
               FROM {METRICS_TABLE} WHERE ts >= %s AND ts < %s""",
            [start, end],
        )
        return cursor.fetchone()


def quality_bins(start: datetime, end: datetime, step_seconds: int, origin: datetime) -> dict[datetime, tuple]:
    """Per bin of `step_seconds` (aligned to `origin`) with measurements: bin start -> (bin start, [p50, p95] of
    packet loss, of jitter, of latency, count of quality 0, 1, 2, 3, newest measurement)."""
    with connections[_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT date_bin(make_interval(secs => %s::double precision), ts, %s) AS bin,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY packet_loss),
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY jitter_ms),
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY latency_ms),
                       {", ".join(f"count(*) FILTER (WHERE quality = {q})" for q in range(4))}, max(ts)
                FROM {METRICS_TABLE} WHERE ts >= %s AND ts < %s
                GROUP BY 1""",
            [step_seconds, origin, start, end],
        )
        return {row[0]: row for row in cursor.fetchall()}


def worst_sessions(
    start: datetime, end: datetime, step_seconds: int, origin: datetime, rank_by: str, limit: int
) -> tuple[list[tuple], dict[Any, list[tuple]], dict[Any, tuple]]:
    """The `limit` sessions of [start, end) with the highest p95 of `rank_by` (a RANK_COLUMNS key) over their
    own measurements in the window: (ranked, timelines, sessions).

    `ranked`: (session id, p95 packet loss, p95 jitter, p95 latency, worst quality, measurements, first, last,
    p95 ranked by), worst first; `timelines`: session id -> [(bin start, mean loss, mean jitter, mean latency,
    worst quality)] per bin of `step_seconds` with measurements; `sessions`: session id -> (started_at,
    ended_at, outcome) of its newest session row starting before `end` (sessions without one are left out).
    """
    column = RANK_COLUMNS[rank_by]
    with connections[_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT session_id,
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY packet_loss),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY jitter_ms),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
                       min(quality), count(*), min(ts), max(ts),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY {column}) AS ranked
                FROM {METRICS_TABLE} WHERE ts >= %s AND ts < %s
                GROUP BY session_id
                ORDER BY ranked DESC NULLS LAST, session_id
                LIMIT %s""",
            [start, end, limit],
        )
        ranked = cursor.fetchall()
        ids: Sequence[Any] = [row[0] for row in ranked]
        timelines: dict[Any, list[tuple]] = {session_id: [] for session_id in ids}
        sessions: dict[Any, tuple] = {}
        if ids:
            cursor.execute(
                f"""SELECT session_id, date_bin(make_interval(secs => %s::double precision), ts, %s),
                          avg(packet_loss), avg(jitter_ms)::float8, avg(latency_ms)::float8, min(quality)
                   FROM {METRICS_TABLE} WHERE ts >= %s AND ts < %s AND session_id = ANY(%s::uuid[])
                   GROUP BY 1, 2 ORDER BY 1, 2""",
                [step_seconds, origin, start, end, ids],
            )
            for session_id, bin_start, loss, jitter, latency, quality in cursor.fetchall():
                timelines[session_id].append((bin_start, loss, jitter, latency, quality))
            cursor.execute(
                f"""SELECT DISTINCT ON (id) id, started_at, ended_at, outcome FROM {SESSIONS_TABLE}
                   WHERE id = ANY(%s::uuid[]) AND started_at < %s ORDER BY id, started_at DESC""",
                [ids, end],
            )
            sessions = {row[0]: row[1:] for row in cursor.fetchall()}
    return ranked, timelines, sessions
