from __future__ import annotations

from django.test import override_settings


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_postgres_and_redis_answer(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready"}


def test_readyz_names_redis_when_it_is_unreachable(client, db, caplog):
    dead = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": "redis://127.0.0.1:1/0",
                        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    with override_settings(CACHES=dead):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body == {"status": "unavailable", "failed": {"redis": "unavailable"}}
    # the detail (exception, host:port) is for the log only, never for an anonymous caller
    assert "127.0.0.1:1" not in response.content.decode() and "Error" not in response.content.decode()
    assert any("redis" in record.getMessage() and "Error" in record.getMessage() for record in caplog.records)


def test_admin_login_page_renders(client, db):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content
