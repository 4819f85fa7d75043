"""The models read the raw-SQL tables; every factory writes a row the ORM reads back."""

from __future__ import annotations

import pytest
from django.db import connection

from telemetry.models import LogEvent
from tests import factories


@pytest.mark.django_db
@pytest.mark.parametrize("factory", [
    factories.MetricSampleFactory, factories.LogEventFactory, factories.TraceIndexEntryFactory,
    factories.ConnectionSessionFactory, factories.ConnectionMetricFactory, factories.SeriesFactory,
    factories.JobRunFactory,
])
def test_every_factory_writes_a_row_the_model_reads_back(factory):
    row = factory()

    assert factory._meta.model.objects.get(pk=row.pk).pk == row.pk


@pytest.mark.django_db
def test_histogram_trait_stores_bounds_and_counts():
    sample = factories.MetricSampleFactory(histogram=True)

    stored = type(sample).objects.get(pk=sample.pk)
    assert len(stored.bucket_counts) == len(stored.bucket_bounds) + 1


@pytest.mark.django_db
def test_the_composite_key_includes_the_partition_column():
    event = factories.LogEventFactory()

    assert LogEvent.objects.get(pk=(event.id, event.ts)).message == event.message
    assert LogEvent._meta.pk.field_names == ("id", "ts")


@pytest.mark.django_db
def test_the_database_refuses_a_log_level_outside_warn_and_error():
    with pytest.raises(Exception, match="check constraint"), connection.cursor() as cursor:
        cursor.execute("INSERT INTO telemetry_log_events (ts, level, service, domain, event, message)"
                       " VALUES (now(), 'INFO', 's', 'd', 'e', 'm')")
