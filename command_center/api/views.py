"""The admin observability API: each view parses, authorises, calls one selector and serialises.

Every view goes through `api_view`, which answers JSON errors (401/403/405/400), validates the query with
the endpoint's row of the parameter table and records the audit event.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from command_center import audit
from command_center.api import openapi
from command_center.api.params import ENDPOINTS, LOG_FILTERS, TRACE_FILTERS, InvalidParameters, parse
from command_center.permissions import can_view_command_center
from command_center.selectors import (
    config,
    error_groups,
    export,
    incident,
    infrastructure,
    links,
    logs,
    offenders,
    overview,
    traces,
    trends,
    voice,
)
from command_center.selectors.caching import cached

View = Callable[[HttpRequest, dict[str, Any]], "dict[str, Any] | HttpResponse"]


def error_response(status: int, error: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": error, **extra}, status=status)


def api_view(endpoint_name: str) -> Callable[[View], Callable[[HttpRequest], HttpResponse]]:
    endpoint = ENDPOINTS[endpoint_name]

    def decorate(view: View) -> Callable[[HttpRequest], HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest) -> HttpResponse:
            if request.method not in ("GET", "HEAD"):
                response = error_response(405, "method not allowed")
                response["Allow"] = "GET, HEAD"
                return response
            if not request.user.is_authenticated:
                return error_response(401, "authentication required", login_url=reverse("admin:login"))
            if not can_view_command_center(request.user):
                return error_response(403, "permission denied")
            try:
                params = parse(endpoint, request.GET, timezone.now())
            except InvalidParameters as error:
                return error_response(400, "invalid parameters", detail=error.detail)
            audit.record_view(request.user, endpoint.name, request.GET.dict())
            if endpoint.cache_seconds:
                key = sorted(params.items())
                result = cached(endpoint.name, endpoint.cache_seconds, lambda: view(request, params), key)
            else:
                result = view(request, params)
            if isinstance(result, HttpResponseBase):
                return result
            return JsonResponse({"generated_at": timezone.now(), **result}, encoder=DjangoJSONEncoder)

        wrapper.endpoint = endpoint  # the URL table and the OpenAPI test read it
        return wrapper

    return decorate


def _window(params: dict[str, Any]) -> dict[str, Any]:
    return {"from": params["window"].start, "to": params["window"].end}


@api_view("summary")
def summary(request, params):
    return overview.summary()


@api_view("trends")
def trends_view(request, params):
    window = params["window"]
    return trends.trend(
        params["metric"], window.start, window.end, group_by=params["group_by"], compare=params["compare"]
    )


@api_view("top-routes")
def top_routes(request, params):
    window = params["window"]
    return {
        "range": _window(params),
        **offenders.top_routes(window.start, window.end, params["sort"], params["limit"]),
    }


@api_view("top-errors")
def top_errors(request, params):
    window = params["window"]
    return {"range": _window(params), **offenders.top_errors(window.start, window.end, params["limit"])}


@api_view("error-groups")
def error_groups_view(request, params):
    window = params["window"]
    return {
        "range": _window(params),
        **error_groups.error_groups_panel(window.start, window.end, params["limit"], service=params["service"],
                                          new_only=params["new"] == "only", search=params["search"]),
    }


@api_view("voice-summary")
def voice_summary(request, params):
    return voice.voice_summary()


@api_view("voice-quality")
def voice_quality(request, params):
    window = params["window"]
    step, _ = trends.choose_step(window.end - window.start)
    return {
        "range": {**_window(params), "step_seconds": step},
        **voice.voice_quality(window.start, window.end, step),
    }


@api_view("voice-worst-sessions")
def voice_worst_sessions(request, params):
    window = params["window"]
    step, _ = trends.choose_step(window.end - window.start)
    return {
        "range": {**_window(params), "step_seconds": step},
        **voice.worst_sessions(window.start, window.end, step, params["sort"], params["limit"]),
    }


@api_view("infrastructure")
def infrastructure_view(request, params):
    return infrastructure.infrastructure()


def _filters(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: params[name] for name in names}


LOG_FILTER_NAMES = tuple(param.name for param in LOG_FILTERS)
TRACE_FILTER_NAMES = tuple(param.name for param in TRACE_FILTERS)


@api_view("logs")
def logs_view(request, params):
    window = params["window"]
    return {
        "range": _window(params),
        **logs.log_page(
            window.start, window.end, params["limit"], params["cursor"], **_filters(params, LOG_FILTER_NAMES)
        ),
    }


@api_view("traces")
def traces_view(request, params):
    window = params["window"]
    return {
        "range": _window(params),
        **traces.trace_page(
            window.start,
            window.end,
            params["limit"],
            params["cursor"],
            **_filters(params, TRACE_FILTER_NAMES),
        ),
    }


@api_view("trace-list")
def trace_list_view(request, params):
    window = params["window"]
    return {
        "range": _window(params),
        **traces.trace_list_page(
            window.start, window.end, params["limit"], params["cursor"], **_filters(params, TRACE_FILTER_NAMES)
        ),
    }


@api_view("trace-waterfall")
def trace_waterfall_view(request, params):
    window = params["window"]
    return {
        "range": _window(params),
        **traces.waterfall(params["trace_id"], window.start, window.end, params["margin"]),
    }


async def _async_chunks(chunks):
    # Under ASGI a synchronous iterator would be consumed whole before sending; hand it over chunk by chunk,
    # always on the same thread so the server-side cursor stays on its connection.
    next_chunk = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)
    while (chunk := await next_chunk()) is not None:
        yield chunk


@api_view("export")
def export_view(request, params):
    kind, fmt, window = params["type"], params["format"], params["window"]
    names = {"logs": LOG_FILTER_NAMES, "traces": TRACE_FILTER_NAMES, "metrics": ("metric",)}[kind]
    filters = _filters(params, names)
    # the download stops at the cap with rows left out: say so in a header, so before the first byte (issue 13)
    truncated = export.export_truncated(kind, window.start, window.end, filters)
    rows = export.export_rows(kind, window.start, window.end, filters)
    chunks = export.csv_chunks(kind, rows) if fmt == "csv" else export.json_chunks(kind, rows)
    content = _async_chunks(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type=export.CONTENT_TYPES[fmt])
    name = export.filename(kind, fmt, timezone.now())
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Export-Row-Cap"] = str(export.EXPORT_MAX_ROWS)
    if truncated:
        response["X-Export-Truncated"] = str(export.EXPORT_MAX_ROWS)
    return response


@api_view("incident-report")
def incident_report_view(request, params):
    window = params["window"]
    content, name = incident.download(window.start, window.end, params["format"])
    response = HttpResponse(content, content_type=incident.FORMATS[params["format"]])
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@api_view("links")
def links_view(request, params):
    return links.links()


@api_view("config")
def config_view(request, params):
    return config.config()


@api_view("openapi")
def openapi_view(request, params):
    return JsonResponse(openapi.document(), json_dumps_params={"indent": 1})
