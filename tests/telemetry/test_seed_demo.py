"""seed_demo: history through the receiver's own pipeline, idempotent per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from telemetry.contract import Metric
from telemetry.ingest.seed import seed_history
from telemetry.models import LogEvent, MetricSample, TraceIndexEntry
from telemetry.simulator.profiles import get_profile

pytestmark = pytest.mark.django_db

# Early in a UTC day, so "today" holds a few steps only.
NOW = datetime.now(UTC).replace(hour=1, minute=30, second=0, microsecond=0)


def test_a_seeded_day_holds_samples_logs_and_traces_and_is_not_seeded_twice():
    first = seed_history(1, get_profile("light"), step=timedelta(minutes=15), now=NOW)
    counts = (MetricSample.objects.count(), LogEvent.objects.count(), TraceIndexEntry.objects.count())
    again = seed_history(1, get_profile("light"), step=timedelta(minutes=15), now=NOW)

    assert not first.days[0].skipped and again.days[0].skipped
    assert first.days[0].data_points > 0
    assert MetricSample.objects.filter(metric_name=Metric.HTTP_REQUESTS_TOTAL).exists()
    assert counts[0] > 0 and counts[1] > 0 and counts[2] > 0
    assert (MetricSample.objects.count(), LogEvent.objects.count(), TraceIndexEntry.objects.count()) == counts


def test_days_outside_retention_are_refused():
    with pytest.raises(CommandError, match="between 1 and 30"):
        call_command("seed_demo", "--days", "31")
