"""Liveness and readiness of kaiku_ops itself (not of the Kaiku platform it watches)."""

from __future__ import annotations

from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.http import require_GET


def _check_postgres() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as error:  # any driver error means "not ready", reported by name
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"


def _check_redis() -> str | None:
    try:
        client = cache._cache.get_client(write=True)
        client.ping()
        return None
    except Exception as error:
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    failures = {name: message for name, message in
                (("postgresql", _check_postgres()), ("redis", _check_redis())) if message}
    if failures:
        return JsonResponse({"status": "unavailable", "failed": failures}, status=503)
    return JsonResponse({"status": "ready"})
