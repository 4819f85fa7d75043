"""Short-lived result caching in the Django cache (Redis); an unavailable cache only costs the caching."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache

logger = logging.getLogger(__name__)

T = TypeVar("T")
PREFIX = "command_center:"


def cache_get(key: str) -> Any:
    try:
        return cache.get(PREFIX + key)
    except Exception as error:  # Redis down or slow: behave as a miss
        logger.warning("cache read failed for %s: %s", key, type(error).__name__)
        return None


def cache_set(key: str, value: Any, seconds: int) -> None:
    try:
        cache.set(PREFIX + key, value, seconds)
    except Exception as error:
        logger.warning("cache write failed for %s: %s", key, type(error).__name__)


def cached(namespace: str, seconds: int, compute: Callable[[], T], key_parts: object) -> T:
    """`compute()` once per `seconds` for equal `key_parts` (their repr is the key)."""
    key = f"{namespace}:{hashlib.sha1(repr(key_parts).encode(), usedforsecurity=False).hexdigest()}"
    hit = cache_get(key)
    if hit is not None:
        return hit
    value = compute()
    cache_set(key, value, seconds)
    return value
