"""Incident report for any window (issue 16, item 5): what an operator attaches to a post-mortem, in one download.

`report(start, end)` gathers, from the same selectors the page uses:

- the window;
- the four vitals (`overview.vital_series`, at the trend charts' step for the window) at its start, at their peak
  and at its end, each with its baseline for that hour (`baselines`: same hour on the previous 7 days);
- the health transitions recorded by the probes in the window;
- the top error groups, new ones first and flagged (`error_groups.error_groups_panel`);
- the top failing and the slowest routes (the rankings of `offenders.top_routes`);
- the deploys first seen in the window (a `service.version` first reported);
- up to 20 example traces (failed ones first, then slow ones, then any), with a Tempo link when configured;
- the log export of the window (`export`: same rows, same cap of 10,000, same CSV formula guard).

`download(start, end, "zip")` renders it as a zip of `report.json` (everything, logs included), `report.md`
(readable, logs left to the CSV) and `logs.csv`. Nothing is stored: a download, so retention still holds.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from command_center.models import HealthTransition
from command_center.selectors import baselines, error_groups, export, links, offenders, overview, trends
from command_center.selectors.config import EXPORT_MAX_ROWS
from command_center.selectors.traces import slow_thresholds, trace_summary_row
from telemetry.queries import traces as whole_traces
from telemetry.queries.instances import deploys_between

TOP = 10
EXAMPLE_TRACES = 20
UNITS = {"latency_p95": "ms", "traffic_rate": "req/s", "error_rate": "%", "saturation_pct": "%"}
TITLES = {"latency_p95": "Latency p95", "traffic_rate": "Traffic", "error_rate": "Server errors (5xx)",
          "saturation_pct": "Saturation"}


def _point(moment: datetime, value: float, name: str) -> dict[str, Any]:
    return {"ts": moment, "value": value,
            "baseline": baselines.judge(value, baselines.vital_baselines(moment)[name])}


def vitals(start: datetime, end: datetime) -> dict[str, Any]:
    """Each vital at the window's start (its first bin with data), peak (highest bin) and end (last bin with
    data), with the baseline of the hour each falls in."""
    step, use_rollup = trends.choose_step(end - start)
    series = overview.vital_series(start, end, step, use_rollup)
    result: dict[str, Any] = {"step_seconds": step}
    for name, unit in UNITS.items():
        points = [(moment, value) for moment, value in zip(series["timestamps"], series[name], strict=True)
                  if value is not None]
        if not points:
            result[name] = {"unit": unit, "start": None, "peak": None, "end": None}
            continue
        peak = max(points, key=lambda point: point[1])  # the earliest of equal highs
        result[name] = {"unit": unit, **{label: _point(*point, name) for label, point in
                                         (("start", points[0]), ("peak", peak), ("end", points[-1]))}}
    return result


def health_transitions(start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = HealthTransition.objects.filter(ts__gte=start, ts__lt=end).order_by("ts", "id")
    return [{"ts": row.ts, "service": row.service, "old_status": row.old_status, "new_status": row.new_status,
             "detail": row.detail} for row in rows]


def top_error_groups(start: datetime, end: datetime) -> dict[str, Any]:
    """The TOP error groups of the window as the Errors tab ranks them (new first), how many there are in all
    and how many of them are new."""
    panel = error_groups.error_groups_panel(start, end, TOP)
    return {"total": panel["total"], "new_total": panel["new_total"], "groups": panel["items"]}


def routes(start: datetime, end: datetime) -> dict[str, list[dict[str, Any]]]:
    return offenders.failing_and_slowest(start, end, TOP)


def example_traces(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Up to EXAMPLE_TRACES traces of the window, newest first within each kind: failed, then slow, then any."""
    chosen: dict[str, whole_traces.TraceSummary] = {}
    for status in ("error", "slow", "all"):
        page, _ = whole_traces.trace_page(start, end, None, EXAMPLE_TRACES, whole_traces.TraceFilters(status),
                                          slow=slow_thresholds())
        for trace in page:
            if len(chosen) < EXAMPLE_TRACES:
                chosen.setdefault(trace.trace_id, trace)
        if len(chosen) >= EXAMPLE_TRACES:
            break
    template = links.links()["tempo"]["trace_url_template"]
    return [{**trace_summary_row(trace),
             "url": template.replace("{trace_id}", trace.trace_id) if template else None}
            for trace in chosen.values()]


def report(start: datetime, end: datetime) -> dict[str, Any]:
    """Every section but the logs (`log_rows` streams those)."""
    return {
        "title": "Kaiku incident report",
        "generated_at": timezone.now(),
        "window": {"from": start, "to": end, "seconds": round((end - start).total_seconds())},
        "vitals": vitals(start, end),
        "health_transitions": health_transitions(start, end),
        "error_groups": top_error_groups(start, end),
        "routes": routes(start, end),
        "deploys": [vars(deploy) for deploy in deploys_between(start, end)],
        "traces": example_traces(start, end),
        "logs": {
            "columns": list(export.COLUMNS["logs"]),
            "row_cap": EXPORT_MAX_ROWS,
            "truncated": export.export_truncated("logs", start, end, {}),
        },
    }


# --- rendering ------------------------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|~"})


def _cell(value: Any) -> str:
    """Text from telemetry as Markdown that shows it literally: specials escaped, one line."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = _iso(value)
    elif isinstance(value, float):
        value = f"{value:,.2f}"
    return " ".join(str(value).split()).translate(_MARKDOWN_SPECIAL)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _table(headers: list[str], rows: list[list[Any]], empty: str) -> list[str]:
    if not rows:
        return [f"_{empty}_", ""]
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
            *("| " + " | ".join(_cell(value) for value in row) + " |" for row in rows), ""]


def _vital_cell(point: dict[str, Any] | None) -> str:
    if point is None:
        return "no data"
    baseline = point["baseline"]
    span = baseline.get("range_7d")
    usual = f"7-day range {span[0]:,.2f}–{span[1]:,.2f}" if span else "no 7-day range"
    verdict = {True: ", unusual", False: "", None: ""}[baseline.get("unusual")]
    return (f"{point['value']:,.2f} at {_iso(point['ts'])[11:16]} "
            f"(yesterday {_cell(baseline.get('yesterday'))}; {usual}{verdict})")


def markdown(data: dict[str, Any]) -> str:
    window = data["window"]
    lines = [f"# {data['title']}", "",
             f"Window: {_iso(window['from'])} – {_iso(window['to'])} (UTC), generated {_iso(data['generated_at'])}.",
             "", "## Vitals (start, peak, end; baseline = same hour on the previous 7 days)", ""]
    vital_rows = [[f"{TITLES[name]} ({UNITS[name]})", *(_vital_cell(data["vitals"][name][label])
                                                       for label in ("start", "peak", "end"))] for name in UNITS]
    lines += ["| vital | start | peak | end |", "|---|---|---|---|",
              *("| " + " | ".join(row) + " |" for row in vital_rows), ""]
    lines += ["## Health transitions", ""] + _table(
        ["time", "service", "from", "to", "detail"],
        [[t["ts"], t["service"], t["old_status"], t["new_status"], t["detail"]] for t in data["health_transitions"]],
        "No health changes in the window.")
    groups = data["error_groups"]
    lines += [f"## Top error groups ({groups['total']} in the window, {groups['new_total']} new)", ""] + _table(
        ["new", "service", "event", "message template", "count", "first seen"],
        [["NEW" if group["new"] else "", group["service"], group["event_template"], group["message_template"],
          group["count"], group["first_seen"]] for group in groups["groups"]], "No error groups in the window.")
    route_columns = ["route", "requests", "errors", "error rate %", "p95 ms"]
    for title, key in (("Top failing routes", "failing"), ("Slowest routes", "slowest")):
        lines += [f"## {title}", ""] + _table(
            route_columns, [[r["route"], r["requests"], r["errors"], r["error_rate_pct"], r["p95_ms"]]
                            for r in data["routes"][key]], "No routes in the window.")
    lines += ["## Deploys", ""] + _table(
        ["first seen", "service", "version"], [[d["at"], d["service"], d["version"]] for d in data["deploys"]],
        "No new version first seen in the window.")
    lines += ["## Example traces", ""] + _table(
        ["trace id", "start", "root span", "service", "duration ms", "spans", "error", "link"],
        [[t["trace_id"], t["start"], t["root_span"], t["service"], t["duration_ms"], t["span_count"],
          "error" if t["error"] else "", t["url"]] for t in data["traces"]], "No kept traces in the window.")
    logs = data["logs"]
    cut = f" It stops at {logs['row_cap']:,} rows; the window holds more." if logs["truncated"] else ""
    lines += ["## Logs", "",
              f"WARN and ERROR logs of the window, newest first: `logs.csv` in the zip download.{cut}", ""]
    return "\n".join(lines)


def log_rows(start: datetime, end: datetime) -> list[tuple]:
    """The log export of the window (`export.export_rows`: newest first, at most EXPORT_MAX_ROWS)."""
    return list(export.export_rows("logs", start, end, {}))


def with_logs(data: dict[str, Any], rows: list[tuple]) -> dict[str, Any]:
    """The report as JSON: the log rows as objects under `logs.items`."""
    columns = export.COLUMNS["logs"]
    return {**data, "logs": {**data["logs"], "rows": len(rows),
                             "items": [dict(zip(columns, row, strict=True)) for row in rows]}}


def to_json(data: dict[str, Any]) -> str:
    # Compact: with an indent Python's JSON encoder is the pure-Python one, 2-3x slower on 10,000 log rows.
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))


def bundle(data: dict[str, Any], rows: list[tuple]) -> bytes:
    """The zip an operator downloads: report.json (with the logs), report.md and logs.csv."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.json", to_json(with_logs(data, rows)))
        archive.writestr("report.md", markdown(data))
        archive.writestr("logs.csv", "".join(export.csv_chunks("logs", rows)))
    return buffer.getvalue()


FORMATS = {"zip": "application/zip", "json": "application/json", "markdown": "text/markdown; charset=utf-8"}
EXTENSIONS = {"zip": "zip", "json": "json", "markdown": "md"}


def download(start: datetime, end: datetime, fmt: str) -> tuple[bytes, str]:
    """The report of [start, end) in `fmt` (zip, json or markdown) and the file name to save it as."""
    data = report(start, end)
    if fmt == "markdown":
        content = markdown(data).encode()
    else:
        rows = log_rows(start, end)
        content = bundle(data, rows) if fmt == "zip" else to_json(with_logs(data, rows)).encode()
    return content, f"kaiku-ops-incident-{start:%Y%m%dT%H%MZ}-{end:%Y%m%dT%H%MZ}.{EXTENSIONS[fmt]}"
