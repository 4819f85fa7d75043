"""The API's parameter table: every endpoint, every parameter, its type and bounds — in one place.

The views validate requests with `parse()`, and `openapi.py` documents the same table, so the OpenAPI
document cannot drift from what the API accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.http import QueryDict

from command_center.selectors.config import PAGE_MAX, RANGES, enabled_metrics
from command_center.selectors.pagination import Cursor, InvalidCursor
from command_center.selectors.traces import LOG_MARGIN_SECONDS, MAX_LOG_MARGIN_SECONDS
from telemetry.contract import CATALOGUE, RETENTION_DAYS
from telemetry.fingerprints import FINGERPRINT_HEX

MAX_RANGE = timedelta(days=RETENTION_DAYS)
# A little slack so "from = now - 30d" computed by a browser a moment ago is still inside retention.
RETENTION_SLACK = timedelta(minutes=5)
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


class ParamKind(StrEnum):
    ENUM = "enum"
    INT = "int"
    DATETIME = "datetime"
    TEXT = "text"
    METRIC = "metric"
    LABEL = "label"
    CURSOR = "cursor"
    TRACE_ID = "trace_id"
    GROUP = "group"  # an error group's key: 16 lower-case hex digits


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    description: str
    choices: tuple[str, ...] = ()
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    required: bool = False
    max_length: int = 200


@dataclass(frozen=True)
class Endpoint:
    name: str  # URL name
    path: str  # below /api/admin/observability/
    summary: str
    params: tuple[Param, ...] = ()
    default_range: str | None = None  # endpoints with a time window
    media_types: tuple[str, ...] = ("application/json",)
    # > 0: responses are cached this long, and a window ending "now" ends on a multiple of it, so
    # every admin polling the same panel shares one computation per period.
    cache_seconds: int = 0

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(param.name for param in self.params)


class InvalidParameters(ValueError):
    """Bad query parameters; `detail` maps each offending parameter to a readable message."""

    def __init__(self, detail: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in detail.items()))
        self.detail = dict(detail)


@dataclass(frozen=True)
class QueryWindow:
    start: datetime
    end: datetime
    range_key: str | None  # "24h" etc., None for an explicit from/to

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _range_params(default: str) -> tuple[Param, ...]:
    return (
        Param(
            "range",
            ParamKind.ENUM,
            f"Window ending now (default {default}); excludes from/to.",
            choices=tuple(RANGES),
        ),
        Param("from", ParamKind.DATETIME, "Window start, ISO 8601 (alternative to range; within 30 days)."),
        Param("to", ParamKind.DATETIME, "Window end, ISO 8601 (default now)."),
    )


def _limit(default: int) -> Param:
    return Param(
        "limit", ParamKind.INT, f"Rows to return, 1–{PAGE_MAX}.", default=default, minimum=1, maximum=PAGE_MAX
    )


CURSOR = Param("cursor", ParamKind.CURSOR, "next_cursor of the previous page (opaque).")
LOG_FILTERS = (
    Param("level", ParamKind.ENUM, "Severity.", choices=("WARN", "ERROR")),
    Param(
        "domain",
        ParamKind.TEXT,
        "Exact domain (auth, chat, voice, ws, db, admin, crypto, telemetry, other).",
        max_length=64,
    ),
    Param("service", ParamKind.TEXT, "Exact service name (service.name).", max_length=128),
    Param(
        "search",
        ParamKind.TEXT,
        "Case-insensitive text contained in the event name or the message.",
        max_length=200,
    ),
    Param("trace_id", ParamKind.TRACE_ID, "Logs of one trace (32 lower-case hex characters)."),
    Param("group", ParamKind.GROUP, "ERROR logs of one error group (its 16-hex-digit key; see error-groups)."),
)
TRACE_FILTERS = (
    Param(
        "status",
        ParamKind.ENUM,
        "error: status >= 500 or ERROR; slow: at or above the slow threshold.",
        choices=("all", "error", "slow"),
        default="all",
    ),
    Param("domain", ParamKind.TEXT, "Exact domain (api, db, voice, ...).", max_length=64),
    Param("route", ParamKind.TEXT, "Exact parameterised route.", max_length=200),
    Param("duration_min", ParamKind.INT, "Minimum duration in ms.", minimum=0, maximum=86_400_000),
    Param("trace_id", ParamKind.TRACE_ID, "One trace (32 lower-case hex characters)."),
)
COMPARE = Param(
    "compare",
    ParamKind.ENUM,
    "Also return the same window 1 day (yesterday) or 7 days (last_week) earlier, aligned on the same timestamps.",
    choices=("yesterday", "last_week"),
)
METRIC_REQUIRED = Param("metric", ParamKind.METRIC, "A catalogue metric name (see config).", required=True)

ENDPOINTS: Mapping[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        Endpoint("summary", "summary", "Vital signs, service health, server metadata and active alerts."),
        Endpoint(
            "trends",
            "trends",
            "Time series of one catalogue metric.",
            (
                METRIC_REQUIRED,
                *_range_params("24h"),
                Param("group_by", ParamKind.LABEL, "One of the metric's labels: one series per value (top 10)."),
                COMPARE,
            ),
            default_range="24h",
            cache_seconds=10,
        ),
        Endpoint(
            "top-routes",
            "top-routes",
            "Routes ranked by p95 latency or error count.",
            (
                *_range_params("24h"),
                Param("sort", ParamKind.ENUM, "Ranking.", choices=("latency", "errors"), default="latency"),
                _limit(10),
            ),
            default_range="24h",
            cache_seconds=10,
        ),
        Endpoint(
            "top-errors",
            "top-errors",
            "Errors ranked by error.type and by route.",
            (*_range_params("24h"), _limit(10)),
            default_range="24h",
            cache_seconds=10,
        ),
        Endpoint(
            "error-groups",
            "error-groups",
            "Error groups of the window (ERROR logs and failed spans by fingerprint): new first, then most errors.",
            (
                *_range_params("24h"),
                Param("service", ParamKind.TEXT, "Exact service name (service.name).", max_length=128),
                Param("new", ParamKind.ENUM, "only: only groups first seen in 24 h or after their service's latest "
                      "deploy.", choices=("only",)),
                Param("search", ParamKind.TEXT, "Case-insensitive text in the event, message or their templates.",
                      max_length=200),
                _limit(20),
            ),
            default_range="24h",
            cache_seconds=10,
        ),
        Endpoint(
            "voice-summary",
            "voice/summary",
            "Voice sessions, rooms, join success and Voice Health Score.",
            cache_seconds=5,
        ),
        Endpoint(
            "voice-quality",
            "voice/quality",
            "Packet loss, jitter, latency and quality-score series.",
            _range_params("1h"),
            default_range="1h",
            cache_seconds=10,
        ),
        Endpoint(
            "voice-worst-sessions",
            "voice/worst-sessions",
            "The voice sessions of the window with the worst packet loss, jitter or latency (session ids only).",
            (
                *_range_params("1h"),
                Param(
                    "sort",
                    ParamKind.ENUM,
                    "Rank by the session's p95 of this measure.",
                    choices=("packet_loss", "jitter", "latency"),
                    default="packet_loss",
                ),
                Param("limit", ParamKind.INT, "Sessions to return, 1–50.", default=10, minimum=1, maximum=50),
            ),
            default_range="1h",
            cache_seconds=10,
        ),
        Endpoint(
            "infrastructure", "infrastructure", "PostgreSQL, Redis, S3, OTel pipeline, ingest, retention."
        ),
        Endpoint(
            "logs",
            "logs",
            "Curated WARN/ERROR logs, newest first, keyset-paginated.",
            (*LOG_FILTERS, *_range_params("24h"), CURSOR, _limit(50)),
            default_range="24h",
        ),
        Endpoint(
            "traces",
            "traces",
            "Trace index rows, newest first, keyset-paginated.",
            (*TRACE_FILTERS, *_range_params("24h"), CURSOR, _limit(50)),
            default_range="24h",
        ),
        Endpoint(
            "trace-list",
            "trace-list",
            "One row per trace (root span, service, route, start, duration, span count, error), newest first, "
            "keyset-paginated; the filters of traces, met by at least one span of the trace (duration_min: by the "
            "whole trace).",
            (*TRACE_FILTERS, *_range_params("24h"), CURSOR, _limit(50)),
            default_range="24h",
        ),
        Endpoint(
            "trace-waterfall",
            "trace-waterfall",
            "The kept spans of one trace as a waterfall (offsets, durations, nesting) and its logs from margin "
            "seconds before its first span to margin seconds after its end.",
            (
                Param("trace_id", ParamKind.TRACE_ID, "The trace (32 lower-case hex characters).", required=True),
                Param(
                    "margin",
                    ParamKind.INT,
                    f"Seconds of logs around the trace's time window, 0–{MAX_LOG_MARGIN_SECONDS}.",
                    default=LOG_MARGIN_SECONDS,
                    minimum=0,
                    maximum=MAX_LOG_MARGIN_SECONDS,
                ),
                *_range_params("24h"),
            ),
            default_range="24h",
        ),
        Endpoint(
            "export",
            "export",
            "Streamed CSV/JSON download of logs, traces or metric samples (<= 10,000 rows).",
            (
                Param(
                    "type", ParamKind.ENUM, "What to export.", choices=("logs", "traces", "metrics"), required=True
                ),
                Param("format", ParamKind.ENUM, "File format.", choices=("csv", "json"), default="csv"),
                Param("metric", ParamKind.METRIC, "type=metrics: only this metric."),
                *{param.name: param for param in (*LOG_FILTERS, *TRACE_FILTERS)}.values(),
                *_range_params("24h"),
            ),
            default_range="24h",
            media_types=("text/csv", "application/json"),
        ),
        Endpoint(
            "incident-report",
            "incident-report",
            "A self-contained incident report of the window, as a download: vitals at start, peak and end with "
            "their baselines, health transitions, error groups, failing and slowest routes, deploys, example "
            "traces and the log export (<= 10,000 rows). zip: report.json + report.md + logs.csv.",
            (
                Param("format", ParamKind.ENUM, "File format.", choices=("zip", "json", "markdown"), default="zip"),
                *_range_params("1h"),
            ),
            default_range="1h",
            media_types=("application/zip", "application/json", "text/markdown"),
        ),
        Endpoint("links", "links", "External tool base URLs and URL templates (empty when not configured)."),
        Endpoint("config", "config", "Thresholds, refresh cadences, feature flags and the metric catalogue."),
        Endpoint("openapi", "openapi.json", "This API's OpenAPI 3 document."),
    )
}


def _single_value(query: QueryDict, name: str) -> str:
    values = query.getlist(name)
    if len(values) > 1:
        raise ValueError("give it once")
    return values[0]


# Date-times a request may name: far enough around any real window that every computation on them (a
# window's start 30 days back, a cursor's next microsecond) stays inside what Python and PostgreSQL can hold.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_UTC_OFFSET = timedelta(hours=14)  # the largest offset in use (Kiribati, +14:00; the lowest is -12:00)


def parse_datetime(text: str) -> datetime:
    """ISO 8601 with a time zone or Z, returned in UTC; a naive time is taken as UTC. Refused (ValueError):
    offsets beyond ±14:00 and times outside 1970–9000, before any arithmetic can overflow on them."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError("expected an ISO 8601 date-time such as 2026-11-29T12:00:00Z") from None
    return to_utc(value)


def to_utc(value: datetime) -> datetime:
    """`value` in UTC (naive: taken as UTC), or ValueError if its offset or year is out of range."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    offset = value.utcoffset()
    if offset is None or abs(offset) > MAX_UTC_OFFSET:
        raise ValueError("the time-zone offset must be between -14:00 and +14:00")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        value = None
    if value is None or not EARLIEST <= value < LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
    return value


def _convert(param: Param, text: str) -> Any:
    if param.kind == ParamKind.ENUM:
        if text not in param.choices:
            raise ValueError(f"must be one of {', '.join(param.choices)}")
        return text
    if param.kind == ParamKind.INT:
        if not re.fullmatch(r"[+-]?\d{1,12}", text.strip()):
            raise ValueError("must be an integer")
        number = int(text)
        if (param.minimum is not None and number < param.minimum) or (
            param.maximum is not None and number > param.maximum
        ):
            raise ValueError(f"must be between {param.minimum} and {param.maximum}")
        return number
    if param.kind == ParamKind.DATETIME:
        return parse_datetime(text)
    if param.kind == ParamKind.METRIC:
        if text not in CATALOGUE:
            raise ValueError("unknown metric (see the config endpoint's catalogue)")
        if text not in enabled_metrics():
            flag = CATALOGUE[text].flag
            raise ValueError(f"metric needs the {flag.env_var if flag else 'feature'} feature flag")
        return text
    if param.kind == ParamKind.CURSOR:
        try:
            return Cursor.decode(text)
        except InvalidCursor as error:
            raise ValueError(str(error)) from None
    if param.kind == ParamKind.TRACE_ID:
        if not TRACE_ID.fullmatch(text):
            raise ValueError("must be 32 lower-case hex characters")
        return text
    if param.kind == ParamKind.GROUP:
        if not FINGERPRINT_HEX.fullmatch(text):
            raise ValueError("must be 16 lower-case hex characters (an error group's key)")
        return text
    if len(text) > param.max_length:
        raise ValueError(f"at most {param.max_length} characters")
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text  # TEXT and LABEL (the label is checked against its metric in parse())


def parse(endpoint: Endpoint, query: QueryDict, now: datetime) -> dict[str, Any]:
    """The validated parameters of one request; raises InvalidParameters naming every bad one.

    Absent optional parameters map to their default (None when they have none). Endpoints with a
    time window also get `window`, a QueryWindow.
    """
    known = {param.name: param for param in endpoint.params}
    errors = {name: "unknown parameter" for name in query if name not in known}
    values: dict[str, Any] = {}
    for param in endpoint.params:
        if param.name not in query or query.get(param.name, "") == "":
            if param.required:
                errors[param.name] = "required"
            values[param.name] = param.default
            continue
        try:
            values[param.name] = _convert(param, _single_value(query, param.name))
        except ValueError as error:
            errors[param.name] = str(error)
    if not errors:
        errors.update(_check_combination(endpoint, values, {name for name in query if query.get(name)}))
    if not errors and endpoint.default_range:
        try:
            values["window"] = resolve_window(values, endpoint.default_range, now, endpoint.cache_seconds)
        except InvalidParameters as error:
            errors.update(error.detail)
    if errors:
        raise InvalidParameters(errors)
    return values


EXPORT_FILTERS = {
    "logs": frozenset(param.name for param in LOG_FILTERS),
    "traces": frozenset(param.name for param in TRACE_FILTERS),
    "metrics": frozenset({"metric"}),
}


def _check_combination(endpoint: Endpoint, values: Mapping[str, Any], given: set[str]) -> dict[str, str]:
    if endpoint.name == "export":
        others = set().union(*EXPORT_FILTERS.values()) - EXPORT_FILTERS[values["type"]]
        return {name: f"not a filter of type={values['type']}" for name in sorted(given & others)}
    group_by, metric = values.get("group_by"), values.get("metric")
    if group_by is not None and metric is not None:
        labels = [label.value for label in CATALOGUE[metric].labels]
        if group_by not in labels:
            allowed = ", ".join(labels) or "none"
            return {"group_by": f"not a label of {metric} (its labels: {allowed})"}
    return {}


def _floor(moment: datetime, seconds: int) -> datetime:
    if not seconds:
        return moment
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def resolve_window(
    values: Mapping[str, Any], default_range: str, now: datetime, quantum_seconds: int = 0
) -> QueryWindow:
    """The window of a request; one ending now ends on a multiple of `quantum_seconds` (if > 0)."""
    range_key, start, end = values.get("range"), values.get("from"), values.get("to")
    if range_key is not None and (start is not None or end is not None):
        raise InvalidParameters({"range": "give either range or from/to, not both"})
    end = min(end, now) if end is not None else _floor(now, quantum_seconds)
    if start is None:
        key = range_key or default_range
        return QueryWindow(end - RANGES[key], end, key if values.get("to") is None else None)
    errors = {}
    if start >= end:
        errors["from"] = "must be earlier than to (and than now)"
    elif end - start > MAX_RANGE:
        errors["from"] = f"the window may span at most {RETENTION_DAYS} days"
    elif start < now - MAX_RANGE - RETENTION_SLACK:
        errors["from"] = f"outside the {RETENTION_DAYS}-day retention"
    if errors:
        raise InvalidParameters(errors)
    return QueryWindow(start, end, None)
