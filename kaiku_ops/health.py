"""Liveness and readiness of kaiku_ops itself (not of the Kaiku platform it watches).

`/readyz` answers anyone (load balancers ask it without a session), so it names only the failed component
and "unavailable"; what went wrong (an exception, a host:port) goes to the log, and admins see the service
health in the Command Center's infrastructure tab.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _describe(error: Exception) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}"


def check_postgres() -> str | None:
    """None when PostgreSQL answers, else what went wrong in one line."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as error:  # any driver error means "not ready", reported by name
        return _describe(error)


def check_redis() -> str | None:
    """None when Redis answers PING, else what went wrong in one line."""
    try:
        cache._cache.get_client(write=True).ping()
        return None
    except Exception as error:
        return _describe(error)


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    failures = {name: message for name, message in
                (("postgresql", check_postgres()), ("redis", check_redis())) if message}
    if failures:
        for name, message in failures.items():
            logger.warning("readyz: %s unavailable: %s", name, message)
        return JsonResponse({"status": "unavailable", "failed": dict.fromkeys(failures, "unavailable")},
                            status=503)
    return JsonResponse({"status": "ready"})
