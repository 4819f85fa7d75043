"""System checks of the telemetry settings (run at start-up and by `manage.py check`)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections

from telemetry.contract import RETENTION_DAYS

CHECK_ID = "telemetry"
RETENTION_TIER_SETTINGS = ("TELEMETRY_SAMPLE_RETENTION_DAYS", "TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS")
PACK_AFTER_MINUTES_RANGE = (10, 1440)
# Created by migration 0011; both in PostgreSQL's contrib (15 on this machine and CI, 18 embedded).
REQUIRED_EXTENSIONS = ("pg_trgm", "btree_gin")


@checks.register(checks.Tags.compatibility)
def check_retention_tiers(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A tier is a number of days inside the 30-day cap: more would silently keep nothing longer, less than a
    day would drop today's data."""
    messages = []
    for name in RETENTION_TIER_SETTINGS:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= RETENTION_DAYS:
            messages.append(checks.Error(
                f"{name} must be a whole number of days from 1 to {RETENTION_DAYS}, got {value!r}",
                id=f"{CHECK_ID}.E001"))
    rate = settings.TELEMETRY_TRACE_SAMPLE_RATE
    if not 0.0 <= rate <= 1.0:
        messages.append(checks.Error(f"TELEMETRY_TRACE_SAMPLE_RATE must be between 0 and 1, got {rate!r}",
                                     id=f"{CHECK_ID}.E002"))
    return messages


@checks.register(checks.Tags.compatibility)
def check_packing(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Packing sooner than 10 minutes after an hour would pack rows still arriving late (they become extra
    chunks); later than a day keeps a whole day as rows, the storage packing exists to avoid."""
    value = settings.TELEMETRY_PACK_AFTER_MINUTES
    low, high = PACK_AFTER_MINUTES_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return [checks.Error(f"TELEMETRY_PACK_AFTER_MINUTES must be a whole number of minutes from {low} to {high}"
                             f" (log records and spans are packed once an hour is that old), got {value!r}",
                             id=f"{CHECK_ID}.E003")]
    return []


@checks.register(checks.Tags.database)
def check_required_extensions(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """A server without contrib cannot run migration 0011: say so in one line before `migrate` fails on it.
    Database checks run for `migrate` and `check --database default`; an unreachable server is preflight's line."""
    if "default" not in (databases or ()):
        return []
    from telemetry.queries.server import unavailable_extensions

    try:
        missing = unavailable_extensions(REQUIRED_EXTENSIONS)
    except DatabaseError:
        return []
    if not missing:
        return []
    db = connections["default"].settings_dict
    host = db["HOST"] or db.get("OPTIONS", {}).get("host") or "localhost"
    return [checks.Error(
        f"PostgreSQL at {host}:{db['PORT'] or 5432} cannot create the extension "
        f"{' or '.join(missing)} (PostgreSQL's contrib, which the telemetry indexes need): install the contrib "
        f"package of that server, or unset DATABASE_URL to use the embedded PostgreSQL 18",
        id=f"{CHECK_ID}.E004")]
