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
def admin_client(client, system_admin):
    """A test client logged in as a system admin (the Command Center's permission, not a superuser)."""
    client.force_login(system_admin)
    return client


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


def truncate_telemetry_tables() -> None:
    """Empty every telemetry table: Django's flush after a transactional test empties managed tables only, and
    the partitioned ones are unmanaged while some (error groups, span aggregates) have no model at all."""
    from django.apps import apps
    from django.db import connection

    unmanaged = [model._meta.db_table for model in apps.get_app_config("telemetry").get_models()
                 if not model._meta.managed]
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE (relname = ANY(%s) OR relname LIKE 'telemetry\\_%%') "
                       "AND relkind IN ('r', 'p') AND NOT relispartition AND relnamespace = 'public'::regnamespace",
                       [unmanaged])
        tables = [row[0] for row in cursor.fetchall()]  # materialized views cannot be truncated
        if tables:
            cursor.execute("TRUNCATE " + ", ".join(connection.ops.quote_name(table) for table in tables))


@pytest.fixture(autouse=True)
def no_telemetry_rows_outlive_a_transactional_test(request, django_db_blocker):
    """Rows a transactional test committed to unmanaged tables would otherwise meet every later test."""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (
        marker is not None and bool(marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    if transactional:
        with django_db_blocker.unblock():
            truncate_telemetry_tables()


@pytest.fixture
def freeze_now(monkeypatch):
    """`freeze_now(moment)` makes `django.utils.timezone.now()` (what the code under test reads as "now") answer
    `moment` until the test ends, and returns it. SQL's now(), `time.time()` (the live windows' arrival time)
    and functions bound before the test (factory defaults) are not frozen: pass the moment to those."""
    from django.utils import timezone

    def freeze(moment):
        monkeypatch.setattr(timezone, "now", lambda: moment)
        return moment

    return freeze


@pytest.fixture
def frozen_now(freeze_now):
    """"Now" frozen at the middle of the current hour, for tests whose windows, days or partitions would shift
    if the clock crossed a minute, an hour or a day boundary while they run."""
    from django.utils import timezone

    return freeze_now(timezone.now().replace(minute=30, second=0, microsecond=0))


@pytest.fixture
def early_in_a_live_window():
    """Waits (at most 5 s) until the current 10-second live window has 5 s left, for tests that write spans and
    read the window they landed in: arrival time is the receiver's real clock, which a test cannot freeze."""
    import time

    from telemetry import live_windows

    left = live_windows.window_start(time.time()) + live_windows.WINDOW_SECONDS - time.time()
    if left < live_windows.WINDOW_SECONDS / 2:
        time.sleep(left + 0.05)
    return time.time()
