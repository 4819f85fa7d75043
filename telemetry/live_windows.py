"""Live RED windows: requests, server errors and a latency histogram per service and route, counted from
every SERVER span as it arrives, in 10-second windows kept in Redis.

Metrics stay the source of record, but they arrive once a minute (the platform's export interval) and are
flushed a minute later: far too late for "is something wrong right now?". Spans arrive every few seconds
(the SDK's batch delay), and the receiver walks every one of them anyway, so counting the entry spans costs
a few dictionary updates per span and one Redis round trip per export request. Every web process adds to
the same windows (HINCRBY is atomic), and the windows expire on their own after `KEEP_SECONDS`.

A span counts in the window of the moment it *arrives* (the receiver's clock), not of its own timestamps:
a batch exported late never rewrites a window already shown, and a sender with a wrong clock still counts.
Spans that ended more than `RECENT_SECONDS` ago (a backfill, a long-buffered retry) are left out: they say
nothing about now.

This module is the only place that knows the windows' Redis layout; readers go through
`telemetry.queries.live`.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from telemetry.redis_client import client

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 10
KEEP_SECONDS = 15 * 60
RECENT_SECONDS = 5 * 60
# Upper bounds (ms) of the latency buckets: the contract's API latency thresholds (200 / 1000 ms) are bounds,
# so "above the threshold" is exact whatever the interpolation inside a bucket.
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 2500, 3000, 5000, 7500, 10000,
)
KEY_PREFIX = "kaiku_ops:live:red:"
SPANS_FIELD = "spans"  # every accepted span of the window, entry or not: "the platform sends spans"
_SEPARATOR = "\x1f"
_REQUESTS, _ERRORS, _BUCKET = "r", "e", "b"
_SERVICE, _ROUTE = "s", "r"
_NANOS_PER_MS = 1_000_000
_LATENCY_BOUNDS_NS = tuple(int(bound * _NANOS_PER_MS) for bound in LATENCY_BOUNDS_MS)
# One round trip and one argument for all of a request's increments ("field\tcount" lines, then the expiry):
# encoding hundreds of separate HINCRBY arguments cost the receiver more than counting the spans did.
_ADD_SCRIPT = r"""
for field, count in string.gmatch(ARGV[1], "([^\t\n]+)\t(%d+)") do
  redis.call('HINCRBY', KEYS[1], field, count)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""


def window_start(unix_seconds: float) -> int:
    return int(unix_seconds) // WINDOW_SECONDS * WINDOW_SECONDS


def window_key(start: int) -> str:
    return f"{KEY_PREFIX}{start}"


def bucket_index(duration_ms: float) -> int:
    """The bucket holding `duration_ms`: bucket i is (bounds[i-1], bounds[i]], the last one +Inf."""
    return bisect_left(LATENCY_BOUNDS_MS, duration_ms)


@dataclass
class RedCounts:
    """Requests, server errors and (for a whole service) latency bucket counts."""

    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))


@dataclass
class LiveCounts:
    """What one export request adds to the current window; filled by the span loop of ingestion.

    Latency buckets are kept per service, requests and errors also per route: every stored field costs the
    receiver on every request, and the per-route view needs rates, not percentiles."""

    received_at: float = field(default_factory=time.time)
    spans: int = 0
    services: dict[str, RedCounts] = field(default_factory=dict)
    routes: dict[tuple[str, str], RedCounts] = field(default_factory=dict)

    @property
    def recent_after_ns(self) -> int:
        """Spans that ended before this (Unix ns) are too old to count."""
        return int((self.received_at - RECENT_SECONDS) * 1_000_000_000)

    def add_request(self, service: str, route: str, duration_ns: int, error: bool) -> None:
        """One SERVER span: `route` as normalised by the contract, `error` for a 5xx or a failed span."""
        by_service = self.services.get(service)
        if by_service is None:
            by_service = self.services[service] = RedCounts()
        key = (service, route)
        by_route = self.routes.get(key)
        if by_route is None:
            by_route = self.routes[key] = RedCounts()
        by_service.requests += 1
        by_route.requests += 1
        if error:
            by_service.errors += 1
            by_route.errors += 1
        by_service.buckets[bisect_left(_LATENCY_BOUNDS_NS, duration_ns)] += 1


def record(counts: LiveCounts) -> bool:
    """Add `counts` to the window of their arrival, in one round trip; False when Redis refused (logged)."""
    if not counts.spans:
        return True
    key = window_key(window_start(counts.received_at))
    lines = [f"{SPANS_FIELD}\t{counts.spans}"]
    for service, service_counts in counts.services.items():
        prefix = f"{_SERVICE}{_SEPARATOR}{_field_part(service)}{_SEPARATOR}"
        lines.append(f"{prefix}{_REQUESTS}\t{service_counts.requests}")
        if service_counts.errors:
            lines.append(f"{prefix}{_ERRORS}\t{service_counts.errors}")
        lines.extend(f"{prefix}{_BUCKET}{index}\t{count}"
                     for index, count in enumerate(service_counts.buckets) if count)
    for (service, route), route_counts in counts.routes.items():
        prefix = f"{_ROUTE}{_SEPARATOR}{_field_part(service)}{_SEPARATOR}{_field_part(route)}{_SEPARATOR}"
        lines.append(f"{prefix}{_REQUESTS}\t{route_counts.requests}")
        if route_counts.errors:
            lines.append(f"{prefix}{_ERRORS}\t{route_counts.errors}")
    try:
        _add_script()(keys=[key], args=["\n".join(lines), KEEP_SECONDS])
    except redis.RedisError as error:
        logger.warning("live windows not updated (Redis: %s)", error)
        return False
    return True


def _add_script():
    global _script
    if _script is None or _script.registered_client is not client():
        _script = client().register_script(_ADD_SCRIPT)
    return _script


_script = None


def _field_part(text: str) -> str:
    return text.replace(_SEPARATOR, " ").replace("\t", " ").replace("\n", " ")


@dataclass(frozen=True)
class Window:
    """One stored window as read back: its start (Unix s), span count, per-service counts (with latency
    buckets) and per-(service, route) counts (requests and errors only)."""

    start: int
    spans: int
    services: dict[str, RedCounts]
    routes: dict[tuple[str, str], RedCounts]


def read(starts: Iterable[int]) -> list[Window] | None:
    """The windows starting at `starts` (absent ones are empty); None when Redis cannot be read."""
    starts = list(starts)
    try:
        pipe = client().pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(window_key(start))
        raw_windows = pipe.execute()
    except redis.RedisError as error:
        logger.warning("live windows unavailable (Redis: %s)", error)
        return None
    return [_parse(start, raw) for start, raw in zip(starts, raw_windows, strict=True)]


def _parse(start: int, raw: dict[bytes, bytes]) -> Window:
    spans = 0
    services: dict[str, RedCounts] = {}
    routes: dict[tuple[str, str], RedCounts] = {}
    for raw_field, raw_value in raw.items():
        name, value = raw_field.decode(), int(raw_value)
        if name == SPANS_FIELD:
            spans = value
            continue
        scope, rest = name.split(_SEPARATOR, 1)
        if scope == _SERVICE:
            service, what = rest.split(_SEPARATOR, 1)
            counts = services.setdefault(service, RedCounts())
        else:
            service, route, what = rest.split(_SEPARATOR, 2)
            counts = routes.setdefault((service, route), RedCounts())
        if what == _REQUESTS:
            counts.requests = value
        elif what == _ERRORS:
            counts.errors = value
        else:
            counts.buckets[int(what[len(_BUCKET):])] = value
    return Window(start, spans, services, routes)


def reset() -> None:
    """Forget every window (tests and demo resets)."""
    redis_client = client()
    keys = list(redis_client.scan_iter(f"{KEY_PREFIX}*", count=1000))
    if keys:
        redis_client.delete(*keys)
