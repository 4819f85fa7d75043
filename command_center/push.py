"""Publishers of the `admin.observability.*` push events (design table 9.1).

Every event goes to a channel-layer group named after its type, through Redis, so an event produced in
any process (a web process ingesting logs, a Celery worker probing health) reaches the sockets held by
every web process. Payloads are built here from allowlisted keys only: whatever a producer hands us,
no other field can reach a socket.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from command_center import presence
from command_center.signals import health_changed
from telemetry.contract import scrub
from telemetry.fingerprints import FINGERPRINT_HEX
from telemetry.signals import error_logs_ingested

logger = logging.getLogger(__name__)

HEALTH_CHANGE = "admin.observability.health_change"
ERROR_EVENT = "admin.observability.error_event"
ERROR_BURST = "admin.observability.error_burst"
VITAL_SIGNS = "admin.observability.vital_signs"
VOICE_PULSE = "admin.observability.voice_pulse"

# A panel the page subscribes to → the topics (= channel-layer groups) its socket joins.
PANEL_TOPICS: Mapping[str, frozenset[str]] = {
    "overview": frozenset({HEALTH_CHANGE, ERROR_EVENT, VITAL_SIGNS}),
    "voice": frozenset({VOICE_PULSE}),
    "infrastructure": frozenset({HEALTH_CHANGE}),
    "logs": frozenset({ERROR_EVENT}),
}
# Computed every 5 s, and only while a socket watches them (see command_center.presence).
TICKING_TOPICS = (VITAL_SIGNS, VOICE_PULSE)

ERROR_EVENTS_PER_SECOND = 20
MAX_MESSAGE_CHARS = 2000  # the contract's limit for a stored log message
# The fields of a vital_signs frame; command_center.selectors.overview.vital_signs() gives their values.
VITAL_SIGN_KEYS = ("latency_p95", "traffic_rate", "error_rate", "saturation_pct")
VOICE_PULSE_KEYS = ("active_sessions", "active_rooms", "join_success_rate_1h")

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_GROUP = FINGERPRINT_HEX
_pending_sends: set[asyncio.Task] = set()


def iso_utc(value: datetime | str | None) -> str:
    """`value` as an ISO 8601 UTC string ending in Z; a missing or unreadable time becomes now."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        value = timezone.now()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _number(value: object) -> float | None:
    """A finite float, else None (JSON has no NaN, and the page shows None as "no data")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: object) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def error_event(row: Mapping[str, Any]) -> dict:
    """The error_event for one ERROR row of `telemetry.signals.error_logs_ingested`."""
    trace_id = _text(row.get("trace_id")).lower()
    group = _text(row.get("group"))
    return {
        "type": ERROR_EVENT,
        "ts": iso_utc(row.get("ts")),
        "service": _text(row.get("service")),
        "domain": _text(row.get("domain")),
        # Already scrubbed at ingestion; scrubbing again costs little and keeps the push safe on its own.
        "event": scrub(_text(row.get("event"))),
        "message": scrub(_text(row.get("message")))[:MAX_MESSAGE_CHARS],
        "trace_id": trace_id if _TRACE_ID.fullmatch(trace_id) else None,
        # The error group (telemetry.fingerprints): the page's live feed keys its rows by it.
        "group": group if _GROUP.fullmatch(group) else None,
    }


def health_change(service: str, old_status: str, new_status: str, ts: datetime | str | None) -> dict:
    return {"type": HEALTH_CHANGE, "ts": iso_utc(ts), "service": _text(service),
            "old_status": _text(old_status), "new_status": _text(new_status)}


def vital_signs(values: Mapping[str, object], ts: datetime | None = None) -> dict:
    values_by_key = {key: _number(values.get(key)) for key in VITAL_SIGN_KEYS}
    return {"type": VITAL_SIGNS, "ts": iso_utc(ts), **values_by_key}


def voice_pulse(values: Mapping[str, object], ts: datetime | None = None) -> dict:
    return {"type": VOICE_PULSE, "ts": iso_utc(ts),
            "active_sessions": _count(values.get("active_sessions")),
            "active_rooms": _count(values.get("active_rooms")),
            "join_success_rate_1h": _number(values.get("join_success_rate_1h"))}


def error_burst(count: int, since: str) -> dict:
    return {"type": ERROR_BURST, "ts": iso_utc(None), "count": count, "since": since}


def _group_send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(layer.group_send)(group, message)
        return
    # Called from code running inside an event loop (an async view sending the signal): no blocking here.
    task = loop.create_task(layer.group_send(group, message))
    _pending_sends.add(task)
    task.add_done_callback(_pending_sends.discard)


def publish(event: dict) -> None:
    """Send one built event to every socket subscribed to its type."""
    _group_send(event["type"], {"type": "push.event", "event": event})


def publish_error_events(rows: Iterable[Mapping[str, Any]]) -> None:
    """Send ERROR rows as error_events, in one group message.

    No socket may show more than ERROR_EVENTS_PER_SECOND a second, so a storm batch carries only that many
    events and the count (and earliest time) of the rest, which sockets report as an error_burst.
    """
    rows = list(rows)
    if not rows:
        return
    # Only the earliest ERROR_EVENTS_PER_SECOND are shown: building (and re-scrubbing) the others is wasted.
    earliest = heapq.nsmallest(ERROR_EVENTS_PER_SECOND + 1, rows, key=lambda row: iso_utc(row.get("ts")))
    shown = [error_event(row) for row in earliest[:ERROR_EVENTS_PER_SECOND]]
    coalesced = len(rows) - len(shown)
    _group_send(ERROR_EVENT, {"type": "push.errors", "events": shown, "coalesced": coalesced,
                              "coalesced_since": iso_utc(earliest[-1].get("ts")) if coalesced else None})


def publish_live_panels(sources: Mapping[str, Callable[[], Mapping[str, object]]] | None = None,
                        topics: Iterable[str] = TICKING_TOPICS) -> list[str]:
    """Publish `topics` (default vital_signs and voice_pulse), each only if a socket watches it; returns the
    topics published.

    `sources` maps a ticking topic to the function giving its values (default: the read-side selectors).
    """
    if sources is None:
        # Imported here: the selectors pull in the whole read side, which the signal wiring does not need.
        from command_center.selectors.overview import vital_signs as current_vital_signs
        from command_center.selectors.voice import voice_pulse as current_voice_pulse

        sources = {VITAL_SIGNS: current_vital_signs, VOICE_PULSE: current_voice_pulse}
    builders = {VITAL_SIGNS: vital_signs, VOICE_PULSE: voice_pulse}
    now = timezone.now()
    published = []
    for topic in topics:
        if presence.is_watched(topic):
            publish(builders[topic](sources[topic](), now))
            published.append(topic)
    return published


def on_error_logs_ingested(sender: object, rows: Iterable[Mapping[str, Any]], **kwargs: object) -> None:
    """Receiver of `telemetry.signals.error_logs_ingested`: the rows are committed, so a push failure must
    not fail the ingest request; it is logged and the page catches up by polling."""
    try:
        publish_error_events(rows)
    except Exception as error:  # Redis down or full: the data is stored, only the live push is lost
        logger.warning("error_event push failed: %s: %s", type(error).__name__, error)


def on_health_changed(sender: object, service: str, old_status: str, new_status: str,
                      ts: datetime | str | None = None, **kwargs: object) -> None:
    """Receiver of `command_center.signals.health_changed`."""
    try:
        publish(health_change(service, old_status, new_status, ts))
    except Exception as error:  # as above: the probe result is cached; only the live push is lost
        logger.warning("health_change push failed: %s: %s", type(error).__name__, error)


def connect_signals() -> None:
    error_logs_ingested.connect(on_error_logs_ingested, dispatch_uid="command_center.push.error_logs")
    health_changed.connect(on_health_changed, dispatch_uid="command_center.push.health_changed")
