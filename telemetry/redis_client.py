"""The write side's own Redis connection (receiver statistics, live windows), with short timeouts.

Everything kept through it is best effort: callers catch `redis.RedisError`, so a slow or missing Redis
never fails (or noticeably slows) ingestion.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

TIMEOUT_SECONDS = 0.25

_lock = threading.Lock()
_client: redis.Redis | None = None


def client() -> redis.Redis:
    """One client (and connection pool) per process."""
    global _client
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS,
                                           socket_connect_timeout=TIMEOUT_SECONDS)
        return _client
