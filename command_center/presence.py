"""Who is watching a live topic right now, kept in Redis with an expiry.

Each open socket that subscribes to a ticking topic (vital signs, voice pulse) holds one member of a
Redis sorted set scored by its expiry time and refreshes it while it lives. The channel layer's own
group membership cannot answer "is anyone watching?": it lasts a day, so a crashed web process would
keep the 5-second work alive. Here a socket that stops refreshing drops out after `PRESENCE_TTL_S`.
"""

from __future__ import annotations

import math
import time
from functools import cache

import redis
from django.conf import settings

PRESENCE_TTL_S = 30.0


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def _key(topic: str) -> str:
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    return f"{prefix}:presence:{topic}"


def mark_present(topic: str, member: str, ttl_s: float = PRESENCE_TTL_S) -> None:
    """Record (or refresh) that `member` (a socket's channel name) watches `topic` for the next `ttl_s`."""
    key = _key(topic)
    with _client(settings.REDIS_URL).pipeline() as pipe:
        pipe.zadd(key, {member: time.time() + ttl_s})
        pipe.expire(key, math.ceil(ttl_s) + 1)  # the whole set goes when its last watcher stops refreshing
        pipe.execute()


def mark_absent(topic: str, member: str) -> None:
    _client(settings.REDIS_URL).zrem(_key(topic), member)


def watcher_count(topic: str) -> int:
    """How many sockets watch `topic` now; expired members are removed on the way."""
    key = _key(topic)
    with _client(settings.REDIS_URL).pipeline() as pipe:
        pipe.zremrangebyscore(key, "-inf", time.time())
        pipe.zcard(key)
        _, count = pipe.execute()
    return int(count)


def is_watched(topic: str) -> bool:
    return watcher_count(topic) > 0
