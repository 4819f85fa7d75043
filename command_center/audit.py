"""Audit trail of Command Center access: one `admin.observability.view` event per user, endpoint and minute.

The rate limit is a Redis `cache.add` (atomic across web processes). When Redis is unavailable the audit
falls back to asking the database whether the minute is already recorded, so access is never blocked and
never goes unrecorded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from command_center.models import AuditEvent

logger = logging.getLogger(__name__)

RATE_LIMIT_SECONDS = 60
PARAM_VALUE_MAX_LENGTH = 100


def summarize_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters as short strings (long free text cut), fit for an audit row."""
    return {str(key): str(value)[:PARAM_VALUE_MAX_LENGTH] for key, value in params.items()}


def _rate_limit_key(user_id: int, endpoint: str) -> str:
    digest = hashlib.sha1(endpoint.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"command_center:audit:{user_id}:{digest}"


def _first_this_minute(user_id: int, endpoint: str) -> bool:
    try:
        return bool(cache.add(_rate_limit_key(user_id, endpoint), 1, RATE_LIMIT_SECONDS))
    except Exception as error:  # any cache failure (Redis down, timeout) → the database decides
        logger.warning("audit rate limit without Redis (%s); using the database", type(error).__name__)
        since = timezone.now() - timedelta(seconds=RATE_LIMIT_SECONDS)
        return not AuditEvent.objects.filter(
            action=AuditEvent.VIEW, user_id=user_id, endpoint=endpoint, ts__gte=since
        ).exists()


def record_view(user: Any, endpoint: str, params: Mapping[str, Any]) -> AuditEvent | None:
    """Record that `user` viewed `endpoint` unless they already did within the last minute.

    Returns the new event, or None when rate-limited. Always written to the primary database.
    """
    if not _first_this_minute(user.pk, endpoint):
        return None
    return AuditEvent.objects.using("default").create(
        action=AuditEvent.VIEW,
        user=user,
        username=user.get_username(),
        endpoint=endpoint[:200],
        params=summarize_params(params),
    )
