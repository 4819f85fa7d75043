"""Top offenders: routes ranked by p95 latency or error count, and errors ranked by type and by route."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from command_center.selectors import metrics
from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.freshness import sample_freshness
from telemetry.contract import Label, Metric


def _ms(seconds: float | None) -> float | None:
    return seconds * 1000 if seconds is not None else None


def _route_figures(start: datetime, end: datetime) -> tuple[dict[str, dict[str, Any]], datetime | None]:
    requests = metrics.by_label(Metric.HTTP_REQUESTS_TOTAL, Label.HTTP_ROUTE, start, end)
    durations = metrics.by_label(Metric.HTTP_REQUEST_DURATION_SECONDS, Label.HTTP_ROUTE, start, end)
    errors = metrics.by_label(Metric.HTTP_ERRORS_TOTAL, Label.HTTP_ROUTE, start, end)
    seconds = (end - start).total_seconds()
    routes = {}
    for route in requests.keys() | durations.keys() | errors.keys():
        count = requests[route].total if route in requests else 0.0
        failed = errors[route].total if route in errors else 0.0
        routes[route] = {
            "route": route,
            "requests": round(count),
            "rate_per_s": count / seconds if seconds else None,
            "errors": round(failed),
            "error_rate_pct": metrics.ratio_pct(failed, count),
            "p95_ms": _ms(durations[route].quantile(0.95)) if route in durations else None,
        }
    newest = metrics.newest_of(requests.values())
    return routes, newest


def _ranked(routes: dict[str, dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    if sort == "latency":
        return sorted(routes.values(), key=lambda r: (r["p95_ms"] is None, -(r["p95_ms"] or 0), r["route"]))
    return sorted((r for r in routes.values() if r["errors"]), key=lambda r: (-r["errors"], r["route"]))


def top_routes(start: datetime, end: datetime, sort: str, limit: int) -> dict[str, Any]:
    routes, newest = _route_figures(start, end)
    return {
        **sample_freshness(newest, REFRESH_SECONDS["top"], timezone.now()),
        "sort": sort,
        "routes": _ranked(routes, sort)[:limit],
    }


def failing_and_slowest(start: datetime, end: datetime, limit: int) -> dict[str, list[dict[str, Any]]]:
    """The top `limit` routes by errors and by p95 latency (the two rankings of `top_routes`), read once."""
    routes, _ = _route_figures(start, end)
    return {"failing": _ranked(routes, "errors")[:limit], "slowest": _ranked(routes, "latency")[:limit]}


def top_errors(start: datetime, end: datetime, limit: int) -> dict[str, Any]:
    by_type = metrics.by_label(Metric.HTTP_ERRORS_TOTAL, Label.ERROR_TYPE, start, end)
    total_errors = sum(agg.total for agg in by_type.values())
    seconds = (end - start).total_seconds()
    types = sorted(
        (
            {
                "error_type": name,
                "count": round(agg.total),
                "share_pct": metrics.ratio_pct(agg.total, total_errors),
                "rate_per_s": agg.total / seconds if seconds else None,
            }
            for name, agg in by_type.items()
            if agg.total
        ),
        key=lambda row: (-row["count"], row["error_type"]),
    )
    routes, newest = _route_figures(start, end)
    dominant = _dominant_error_type(start, end)
    ranked_routes = sorted(
        (r for r in routes.values() if r["errors"]), key=lambda r: (-r["errors"], r["route"])
    )
    return {
        **sample_freshness(newest, REFRESH_SECONDS["top"], timezone.now()),
        "total_errors": round(total_errors),
        "by_type": types[:limit],
        "by_route": [
            {
                "route": r["route"],
                "count": r["errors"],
                "error_rate_pct": r["error_rate_pct"],
                "p95_ms": r["p95_ms"],
                "top_error_type": dominant.get(r["route"]),
            }
            for r in ranked_routes[:limit]
        ],
    }


def _dominant_error_type(start: datetime, end: datetime) -> dict[str, str]:
    """route → its most frequent error.type in the window."""
    pairs = metrics.aggregate(
        Metric.HTTP_ERRORS_TOTAL, start, end, group_label=(Label.HTTP_ROUTE, Label.ERROR_TYPE)
    )
    best: dict[str, tuple[float, str]] = {}
    for (_, key), agg in pairs.items():
        route, _, error_type = (key or "").partition(metrics.GROUP_SEPARATOR)
        if route and error_type and agg.total > best.get(route, (0.0, ""))[0]:
            best[route] = (agg.total, error_type)
    return {route: error_type for route, (_, error_type) in best.items()}
