"""A database outage answers 503 with Retry-After, never a 500 traceback.

With PostgreSQL down, even a logged-in request fails when its session is loaded; the operator
and any client should read "unavailable, retry", which is what it is. (The OTLP receivers map
storage failures themselves, with a google.rpc.Status body.)
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGE = "The database is unavailable; retry shortly."


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        from psycopg_pool import PoolTimeout

        errors.append(PoolTimeout)
    except ImportError:  # the pool is optional
        pass
    return tuple(errors)


UNAVAILABLE_ERRORS = _unavailable_errors()


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, UNAVAILABLE_ERRORS):
            return None
        # The message tells a stopped server ("connection refused") from an exhausted pool ("couldn't get a
        # connection after 5.00 sec").
        logger.warning("database unavailable for %s: %s: %s", request.path, type(exception).__name__,
                       str(exception).strip()[:200])
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"error": "database unavailable", "detail": MESSAGE},
                                                  status=503)
        else:
            response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
