"""Live RED of the last seconds, read from the 10-second span windows (`telemetry.live_windows`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from telemetry import histograms, live_windows
from telemetry.live_windows import LATENCY_BOUNDS_MS, WINDOW_SECONDS

# How far back a SERVER span must have arrived for the platform to count as "sending spans".
SENDING_LOOKBACK_SECONDS = 120


@dataclass(frozen=True)
class Red:
    """Requests, server errors (5xx or failed) and the latency histogram of some requests over `seconds`."""

    requests: int
    errors: int
    buckets: tuple[int, ...]
    seconds: float

    @property
    def rate_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_pct(self) -> float | None:
        return 100.0 * self.errors / self.requests if self.requests else None

    def latency_ms(self, q: float) -> float | None:
        return histograms.quantile(LATENCY_BOUNDS_MS, self.buckets, q) if self.requests else None


@dataclass(frozen=True)
class LiveRed:
    """The last `seconds` (the current, partial window included) of entry spans, all together and split
    by service and by (service, route) (per route without latency: `latency_ms` is None there). `sending`
    tells whether the platform sent any SERVER span in the last SENDING_LOOKBACK_SECONDS: without that,
    zero requests mean "no spans", not "no traffic". `short` is `total` over only the newest `short_seconds`
    when asked for (one read of Redis serves both)."""

    seconds: float
    sending: bool
    total: Red
    by_service: dict[str, Red]
    by_route: dict[tuple[str, str], Red]
    short: Red | None = None


def live_red(now: float | None = None, seconds: int = 60, short_seconds: int | None = None) -> LiveRed | None:
    """RED over the last `seconds` (a multiple of the 10 s window; the covered time is exact, between
    `seconds - 10` and `seconds`); None when Redis cannot be read.

    When the platform has only just started sending (no span at all in the windows before its first one,
    as far back as SENDING_LOOKBACK_SECONDS), the covered time starts with that first window: rates are
    per second of sending, not diluted by the silence before it."""
    now = time.time() if now is None else now
    current = live_windows.window_start(now)
    shown = max(1, seconds // WINDOW_SECONDS)
    looked_at = max(shown, SENDING_LOOKBACK_SECONDS // WINDOW_SECONDS)
    starts = [current - index * WINDOW_SECONDS for index in range(looked_at)]
    windows = live_windows.read(starts)
    if windows is None:
        return None
    recent = windows[:shown]
    covered = now - starts[_first_covered(windows, shown) - 1]
    sending = any(counts.requests for window in windows for counts in window.services.values())
    by_route = _merged((route, counts) for window in recent for route, counts in window.routes.items())
    by_service = _merged((service, counts) for window in recent for service, counts in window.services.items())
    total = _merged(("", counts) for window in recent for counts in window.services.values())
    short = None
    if short_seconds is not None:
        short_shown = min(shown, max(1, short_seconds // WINDOW_SECONDS))
        newest = _merged(("", counts) for window in windows[:short_shown] for counts in window.services.values())
        short = _red(newest.get("", None), now - starts[min(short_shown, _first_covered(windows, shown)) - 1])
    return LiveRed(
        seconds=covered,
        sending=sending,
        total=_red(total.get("", None), covered),
        by_service={key: _red(counts, covered) for key, counts in by_service.items()},
        by_route={key: _red(counts, covered) for key, counts in by_route.items()},
        short=short,
    )


def _first_covered(windows: list[live_windows.Window], shown: int) -> int:
    """How many of the newest windows the rates cover: `shown`, or fewer when the oldest window holding
    any span (over the whole look-back) is newer than the oldest shown one."""
    with_spans = [index for index, window in enumerate(windows) if window.spans]
    if not with_spans:
        return shown
    return min(shown, with_spans[-1] + 1)


def _merged(items) -> dict:
    merged: dict = {}
    for key, counts in items:
        into = merged.get(key)
        if into is None:
            into = merged[key] = live_windows.RedCounts()
        into.requests += counts.requests
        into.errors += counts.errors
        into.buckets = [a + b for a, b in zip(into.buckets, counts.buckets, strict=True)]
    return merged


def _red(counts: live_windows.RedCounts | None, seconds: float) -> Red:
    if counts is None:
        return Red(0, 0, (0,) * (len(LATENCY_BOUNDS_MS) + 1), seconds)
    return Red(counts.requests, counts.errors, tuple(counts.buckets), seconds)
