"""A task goes through the real Redis broker to a real worker thread (not eager mode)."""

from __future__ import annotations

import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache

from kaiku_ops.celery import app


@app.task(name="tests.kaiku_ops.remember")
def remember(key: str, value: str) -> None:
    cache.set(key, value, 60)


@pytest.mark.django_db(transaction=True)
def test_task_round_trips_through_the_broker_to_a_worker():
    assert not app.conf.task_always_eager
    key = f"celery-roundtrip-{uuid.uuid4()}"
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        remember.delay(key, "delivered")
        deadline = time.monotonic() + 15
        while cache.get(key) is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert cache.get(key) == "delivered"
