"""Self-telemetry of the receiver, shared by every web process through a Redis hash.

Recording is best effort: a Redis failure is logged and never fails (or noticeably slows) ingestion.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.db import DatabaseError
from django.utils import timezone

from telemetry.ingest.buffer import pending_depth
from telemetry.ingest.outcome import IngestOutcome
from telemetry.otlp import OtlpSignal
from telemetry.redis_client import client as _redis

STATS_KEY = "kaiku_ops:ingest:stats"
_COUNTERS = ("requests", "accepted", "rejected", "not_kept", "stored", "forbidden_dropped", "bytes")

logger = logging.getLogger(__name__)


def record_request(signal: OtlpSignal, outcome: IngestOutcome, body_bytes: int, decode_ms: float) -> None:
    """Add one answered request's counts (one Redis round trip)."""
    increments = {"requests": 1, "accepted": outcome.accepted, "rejected": outcome.rejected,
                  "not_kept": outcome.not_kept, "stored": outcome.stored,
                  "forbidden_dropped": outcome.forbidden_dropped, "bytes": body_bytes}
    try:
        pipe = _redis().pipeline(transaction=False)
        for name, amount in increments.items():
            pipe.hincrby(STATS_KEY, f"{signal}.{name}", amount)
        pipe.hincrbyfloat(STATS_KEY, f"{signal}.decode_ms", decode_ms)
        pipe.hset(STATS_KEY, f"{signal}.last_at", timezone.now().isoformat())
        pipe.hsetnx(STATS_KEY, "since", timezone.now().isoformat())
        pipe.execute()
    except redis.RedisError as error:
        logger.warning("receiver stats not recorded (Redis: %s)", error)


def receiver_stats() -> dict[str, Any]:
    """Totals per signal since `since` (all web processes), the decode time per request, and the metric
    buffer's depth (pending data points not yet flushed into minute samples).

    {"available": bool, "since": iso|None, "buffer_depth": int|None,
     "signals": {"metrics"|"logs"|"traces": {"requests", "accepted", "rejected", "not_kept", "stored",
                 "forbidden_dropped", "bytes": int, "decode_ms_avg": float|None, "last_at": iso|None}}}

    `forbidden_dropped` counts forbidden attribute keys (user ids, e-mails, tokens...) the receiver removed.
    """
    try:
        raw = {key.decode(): value.decode() for key, value in _redis().hgetall(STATS_KEY).items()}
        available = True
    except redis.RedisError as error:
        logger.warning("receiver stats unavailable (Redis: %s)", error)
        raw, available = {}, False
    try:
        depth: int | None = pending_depth()
    except DatabaseError:
        depth = None
    signals = {}
    for signal in OtlpSignal:
        counts = {name: int(raw.get(f"{signal}.{name}", 0)) for name in _COUNTERS}
        decode_ms = float(raw.get(f"{signal}.decode_ms", 0.0))
        counts["decode_ms_avg"] = round(decode_ms / counts["requests"], 3) if counts["requests"] else None
        counts["last_at"] = raw.get(f"{signal}.last_at")
        signals[signal.value] = counts
    return {"available": available, "since": raw.get("since"), "buffer_depth": depth, "signals": signals}


def reset_stats() -> None:
    _redis().delete(STATS_KEY)
