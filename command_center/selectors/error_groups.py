"""Error groups of a window: what Sentry calls issues, counted at ingest (telemetry.queries.error_groups).

A group is **new** when it was first seen in the last NEW_WITHIN (24 h) or after its service's latest deploy
(a `service.version` change, as the server panel knows it: selectors.server). New groups come first, then
the most errors in the window.

`top_groups(start, end, limit, service=None, ...)` is the entry point for other panels (the incident report);
`error_groups_panel` is the API's answer (with sparklines and links).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from command_center.selectors.server import deploys_by_service
from telemetry.queries import error_groups as queries
from telemetry.queries.error_groups import GroupCount

NEW_WITHIN = timedelta(hours=24)
SPARKLINE_BUCKETS = 30
MIN_STEP_SECONDS = 60
NEW_RECENT = "first_seen_24h"
NEW_AFTER_DEPLOY = "after_deploy"


@dataclass(frozen=True)
class ErrorGroup:
    """A group with its errors in the window and whether it is new (`new_reason`: first_seen_24h or
    after_deploy, None when not new)."""

    counted: GroupCount
    new_reason: str | None
    deployed_at: datetime | None  # its service's latest deploy, when known

    @property
    def new(self) -> bool:
        return self.new_reason is not None

    @property
    def group(self) -> str:
        return self.counted.group


def _new_reason(group: GroupCount, now: datetime, deploys: dict[str, datetime]) -> str | None:
    if group.first_seen >= now - NEW_WITHIN:
        return NEW_RECENT
    deployed = deploys.get(group.service)
    if deployed is not None and group.first_seen >= deployed:
        return NEW_AFTER_DEPLOY
    return None


def top_groups(start: datetime, end: datetime, limit: int, service: str | None = None, *,
               new_only: bool = False, search: str | None = None, now: datetime | None = None) -> list[ErrorGroup]:
    """The error groups with errors in [start, end): new ones first, then by errors in the window, then the most
    recently seen; at most `limit`."""
    found, _, _ = _ranked(start, end, limit, service, new_only, search, now or timezone.now())
    return found


def _ranked(start, end, limit, service, new_only, search, now, step_seconds=None
            ) -> tuple[list[ErrorGroup], queries.RankedGroups, dict[str, datetime]]:
    deploys = deploys_by_service(now)
    ranked = queries.ranked_groups(start, end, limit, queries.Ranking(now - NEW_WITHIN, deploys, new_only),
                                   service=service, search=search, step_seconds=step_seconds)
    groups = [ErrorGroup(counted, _new_reason(counted, now, deploys), deploys.get(counted.service))
              for counted in ranked.groups]
    return groups, ranked, deploys


def sparkline_step(start: datetime, end: datetime) -> int:
    """Seconds per sparkline bar: whole minutes, about SPARKLINE_BUCKETS bars over the window."""
    seconds = (end - start).total_seconds()
    minutes = max(1, -(-int(seconds) // (SPARKLINE_BUCKETS * MIN_STEP_SECONDS)))
    return minutes * MIN_STEP_SECONDS


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def group_row(group: ErrorGroup, sparkline: list[int]) -> dict[str, Any]:
    counted = group.counted
    return {
        "group": counted.group,
        "source": counted.source,
        "service": counted.service,
        "event": counted.event,
        "message": counted.message,
        "event_template": counted.event_template,
        "message_template": counted.message_template,
        "count": counted.count,
        "first_seen": _iso(counted.first_seen),
        "last_seen": _iso(counted.last_seen),
        "new": group.new,
        "new_reason": group.new_reason,
        "routes": list(counted.routes),
        "trace_id": counted.trace_id,
        "sparkline": sparkline,
        # Filters of the logs and traces lists that show this group's records.
        "links": {
            "logs": {"group": counted.group} if counted.source == "log" else None,
            "traces": {"trace_id": counted.trace_id} if counted.trace_id else None,
        },
    }


def error_groups_panel(start: datetime, end: datetime, limit: int, service: str | None = None,
                       new_only: bool = False, search: str | None = None) -> dict[str, Any]:
    """The API's answer: the ranked groups (at most `limit`) with a sparkline each, how many match in all and
    how many of those are new, and the deploy times that made groups new."""
    step = sparkline_step(start, end)
    shown, ranked, deploys = _ranked(start, end, limit, service, new_only, search, timezone.now(), step)
    return {
        "sparkline_step_seconds": step,
        "total": ranked.total,
        "new_total": ranked.new_total,
        "new_within_hours": int(NEW_WITHIN.total_seconds() // 3600),
        "deploys": {service_name: _iso(deployed) for service_name, deployed in sorted(deploys.items())},
        "items": [group_row(group, ranked.sparklines[group.group]) for group in shown],
    }
