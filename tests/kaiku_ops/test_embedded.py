"""The embedded servers are real PostgreSQL and Redis daemons, started idempotently."""

from __future__ import annotations

import psycopg
import pytest
import redis

from kaiku_ops.embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.slow


def test_embedded_postgres_starts_answers_and_restarts_idempotently(tmp_path):
    server = EmbeddedPostgres(tmp_path)
    try:
        first = server.start()
        with psycopg.connect(first.url) as conn:
            assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
        again = server.start()
        assert again == first  # reused, not a second server
        assert server.stop() is True
        assert server.running_pid() is None
        restarted = server.start()
        assert restarted.port == first.port and restarted.pid != first.pid
        with psycopg.connect(restarted.url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("kaiku_ops",)
    finally:
        server.stop()


def test_embedded_redis_starts_answers_and_restarts_idempotently(tmp_path):
    server = EmbeddedRedis(tmp_path)
    try:
        first = server.start()
        client = redis.Redis.from_url(first.url)
        client.set("kaiku:probe", "1")
        assert server.start() == first
        assert server.stop() is True
        restarted = server.start()
        assert restarted.port == first.port
        assert redis.Redis.from_url(restarted.url).get("kaiku:probe") == b"1"  # append-only file kept it
    finally:
        server.stop()
