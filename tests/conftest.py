"""Fixtures shared by the whole suite. Everything runs against real PostgreSQL and real Redis:
the embedded ones under .data/ unless DATABASE_URL / REDIS_URL name other servers."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root-admin", password="pw-root-admin-1")


@pytest.fixture
def system_admin(db):
    """A staff user who is not a superuser but holds the Command Center permission."""
    user = get_user_model().objects.create_user("ops", password="pw-ops-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_command_center"))
    return user


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user("staff", password="pw-staff-1", is_staff=True)


@pytest.fixture
def plain_user(db):
    return get_user_model().objects.create_user("plain", password="pw-plain-1")


@pytest.fixture
def redis_client():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture(scope="session")
def celery_worker_app():
    from kaiku_ops.celery import app

    return app


@pytest.fixture(autouse=True)
def forget_live_windows():
    """The live span windows live in Redis for 15 minutes: no test may see another test's requests."""
    from telemetry import live_windows

    try:
        live_windows.reset()
    except Exception:  # a test that runs without Redis does not read them either
        pass
    yield


@pytest.fixture
def frozen_now(monkeypatch):
    """Freezes `django.utils.timezone.now()` (what the code under test reads as "now") at the middle of the
    current hour, for tests whose windows, days or partitions would shift if the clock crossed an hour or a
    day boundary while they run. SQL's now() and functions bound before the test (factory defaults) are not
    frozen: pass the returned moment to those."""
    from django.utils import timezone

    moment = timezone.now().replace(minute=30, second=0, microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    return moment
