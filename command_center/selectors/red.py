"""The one definition of the platform's HTTP traffic, server-error rate and latency p95 "now".

Every place that shows one of them (the vital cards, the HTTP API row of the matrix, the alerts, the
`vital_signs` push) asks `red_now()`, so they always agree and say which window they show.

The freshest source wins: the live span windows (`telemetry.queries.live`, counted as spans arrive, so an
incident shows within seconds) over the last 60 s. A sharp incident needs a good part of that minute to
push the 60 s average over a red threshold, so the newest 20 s are read too: when they alone are red, and
hold enough requests to mean it, they are what every place shows, labelled as such.

When the platform sends no SERVER spans, or Redis cannot be read, it falls back to the request metrics: the
last five whole minutes that have been flushed, ending at the newest stored minute (so the value never
blanks out between two flushes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from command_center import thresholds
from command_center.selectors import metrics
from telemetry.contract import Label, Metric
from telemetry.queries.live import Red, live_red

LIVE_WINDOW_SECONDS = 60
SHORT_WINDOW_SECONDS = 20
SHORT_WINDOW_MIN_REQUESTS = 50  # below this a handful of failures would turn the card red
METRICS_WINDOW = timedelta(minutes=5)
METRICS_FRESH = timedelta(minutes=5)  # a newest minute older than this means "no request metrics"
SERVER_ERROR = metrics.LabelMatch(Label.HTTP_STATUS_CODE, prefix="5")


class Source:
    SPANS = "spans"
    METRICS = "metrics"


@dataclass(frozen=True)
class RedNow:
    """Traffic (req/s), server errors (% of requests answered 5xx or failed) and latency p95 (ms) over one
    window; `None` values mean no request in the window (or no source at all)."""

    source: str | None
    window_seconds: int
    window_label: str
    requests: int | None
    traffic_rate: float | None
    error_rate_pct: float | None
    latency_p95_ms: float | None

    def as_dict(self) -> dict:
        return asdict(self)


NO_DATA = RedNow(None, 0, "no request data", None, None, None, None)


def red_now(now: datetime | None = None, metrics_answer: RedNow | None = None) -> RedNow:
    """`metrics_answer`: the request metrics' answer the caller already holds (the cached summary's, seconds
    old), used instead of reading them again when there are no spans. They change once a minute, at a flush."""
    now = now or timezone.now()
    live = live_red(now.timestamp(), LIVE_WINDOW_SECONDS, short_seconds=SHORT_WINDOW_SECONDS)
    if live is None or not live.sending:
        return metrics_answer if metrics_answer is not None else _from_metrics(now)
    minute = _from_spans(live.total)
    if live.short is not None and live.short.requests >= SHORT_WINDOW_MIN_REQUESTS:
        newest = _from_spans(live.short, SHORT_WINDOW_SECONDS)
        if _red_signals(newest) - _red_signals(minute):
            return newest
    return minute


def _red_signals(api: RedNow) -> set[str]:
    """The threshold keys of the API signals that `api` puts beyond red."""
    limits = thresholds.thresholds()
    values = {"api_error_rate_pct": api.error_rate_pct, "api_latency_p95_ms": api.latency_p95_ms}
    return {key for key, value in values.items()
            if value is not None and thresholds.status_for(value, limits[key]) == thresholds.Status.RED}


def red_by_service(now: datetime | None = None) -> dict[str, RedNow]:
    """Per service, from the live windows only (the metrics carry no service); empty without spans."""
    now = now or timezone.now()
    live = live_red(now.timestamp(), LIVE_WINDOW_SECONDS)
    if live is None or not live.sending:
        return {}
    return {service: _from_spans(red) for service, red in sorted(live.by_service.items())}


def _from_spans(red: Red, seconds: int = LIVE_WINDOW_SECONDS) -> RedNow:
    if not red.requests:
        return RedNow(Source.SPANS, seconds, f"last {seconds} s", 0, 0.0, None, None)
    return RedNow(Source.SPANS, seconds, f"last {seconds} s", red.requests, red.rate_per_second,
                  red.error_pct, red.latency_ms(0.95))


def _from_metrics(now: datetime) -> RedNow:
    newest = metrics.newest_sample_ts(Metric.HTTP_REQUESTS_TOTAL)
    if newest is None or newest < now - METRICS_FRESH:
        return NO_DATA
    end = min(newest, now).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - METRICS_WINDOW
    requests = metrics.total(Metric.HTTP_REQUESTS_TOTAL, start, end).total
    errors = metrics.total(Metric.HTTP_REQUESTS_TOTAL, start, end, match=[SERVER_ERROR]).total
    p95 = metrics.total(Metric.HTTP_REQUEST_DURATION_SECONDS, start, end).quantile(0.95)
    seconds = int(METRICS_WINDOW.total_seconds())
    label = f"5 min to {end:%H:%M} UTC"
    return RedNow(Source.METRICS, seconds, label, int(requests), requests / seconds,
                  metrics.ratio_pct(errors, requests), p95 * 1000 if p95 is not None else None)
