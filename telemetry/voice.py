"""Where the voice quality tables (`connection_sessions`, `connection_metrics`) are read from.

In production they live in the Kaiku platform database (`VOICE_DATABASE_URL`, alias "voice",
read-only to us); without it our own copies in the default database are used.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from telemetry.models import ConnectionMetric, ConnectionSession


def voice_alias() -> str:
    """The database alias holding the voice tables (`settings.VOICE_DATABASE_ALIAS`, default "default")."""
    return getattr(settings, "VOICE_DATABASE_ALIAS", "default")


def voice_sessions() -> QuerySet[ConnectionSession]:
    return ConnectionSession.objects.using(voice_alias())


def voice_metrics() -> QuerySet[ConnectionMetric]:
    return ConnectionMetric.objects.using(voice_alias())
