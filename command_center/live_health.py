"""Re-evaluate the live services of the matrix as soon as spans arrive, instead of at the next beat.

The receiver sends `telemetry.signals.live_windows_updated` after every export request that added SERVER
spans to the live windows. Across all web processes, at most one evaluation a second is queued (a Redis
key that expires after a second), and it runs in a Celery worker, never in the ingest request: the HTTP API
probe may call the operator's health URL.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import cache

from telemetry.signals import live_windows_updated

logger = logging.getLogger(__name__)

THROTTLE_KEY = "command_center:live_health:queued"
THROTTLE_SECONDS = 1
EXPIRES_SECONDS = 5  # a queued evaluation older than this is superseded by a newer one or by the beat


_local = threading.Lock()
_last_asked = float("-inf")


def on_live_windows_updated(sender: object, **kwargs: object) -> None:
    from command_center.tasks import evaluate_live_health

    if not _first_this_second_here():
        return  # this process asked less than a second ago: no Redis round trip for the other requests
    try:
        if cache.add(THROTTLE_KEY, 1, timeout=THROTTLE_SECONDS):
            evaluate_live_health.apply_async(expires=EXPIRES_SECONDS, retry=False)
    except Exception as error:  # Redis or the broker down: the beat's probe run still comes within 10 s
        logger.warning("live health evaluation not queued: %s: %s", type(error).__name__, error)


def _first_this_second_here() -> bool:
    global _last_asked
    now = time.monotonic()
    with _local:
        if now - _last_asked < THROTTLE_SECONDS:
            return False
        _last_asked = now
        return True


def connect_signals() -> None:
    live_windows_updated.connect(on_live_windows_updated, dispatch_uid="command_center.live_health")
