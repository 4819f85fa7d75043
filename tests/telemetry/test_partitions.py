"""Daily partitions: created ahead, idempotent, safe under concurrency, and never losing default rows."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, connections

from telemetry.models import LogEvent
from telemetry.partitions import (
    day_partitions,
    default_partition_name,
    ensure_partitions,
    partition_name,
    partitioned_tables,
)
from tests.factories import LogEventFactory

FAR_FUTURE = datetime(2041, 3, 10, 12, 0, tzinfo=UTC)


def _partition_holding(table: str, column: str, value: datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = %s", [value])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_migration_created_partitions_from_31_days_back_to_3_days_ahead():
    # Counted from the day the migrations ran, not today: a session may cross midnight before this test.
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(applied), max(applied) FROM django_migrations WHERE app = 'telemetry'")
        migrated_days = {moment.astimezone(UTC).date() for moment in cursor.fetchone()}
    for table in partitioned_tables():
        days = {partition.day for partition in day_partitions(table)}
        assert any({day - timedelta(days=31), day, day + timedelta(days=3)} <= days for day in migrated_days), table


@pytest.mark.django_db
def test_every_partitioned_table_of_the_database_is_maintained():
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'p' AND NOT relispartition "
                       "AND relnamespace = 'public'::regnamespace")
        in_database = {row[0] for row in cursor.fetchall()}

    assert set(partitioned_tables()) == in_database


@pytest.mark.django_db
def test_ensure_partitions_creates_the_window_once():
    created = ensure_partitions(now=FAR_FUTURE, days_back=1, days_ahead=1, tables=["telemetry_log_events"])

    assert created == [partition_name("telemetry_log_events", date(2041, 3, day)) for day in (9, 10, 11)]
    assert ensure_partitions(now=FAR_FUTURE, days_back=1, days_ahead=1, tables=["telemetry_log_events"]) == []


@pytest.mark.django_db
def test_a_row_for_a_day_without_partition_goes_to_the_default_partition_and_moves_later():
    when = FAR_FUTURE + timedelta(days=5)
    LogEventFactory(ts=when)
    assert _partition_holding("telemetry_log_events", "ts", when) == default_partition_name("telemetry_log_events")

    ensure_partitions(now=when, days_back=0, days_ahead=0, tables=["telemetry_log_events"])

    assert _partition_holding("telemetry_log_events", "ts", when) == "telemetry_log_events_p20410315"
    assert LogEvent.objects.filter(ts=when).count() == 1


@pytest.mark.django_db
def test_unknown_table_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="valid: telemetry_metric_samples"):
        ensure_partitions(tables=["auth_user"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_create_each_partition_exactly_once():
    when = datetime(2042, 6, 1, tzinfo=UTC)
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run():
        try:
            start.wait()
            results.append(ensure_partitions(now=when, days_back=3, days_ahead=3))
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        created = results[0] + results[1]
        assert len(created) == len(set(created)) == 7 * len(partitioned_tables())
    finally:
        with connection.cursor() as cursor:
            for table in partitioned_tables():
                for partition in day_partitions(table):
                    if partition.day.year == 2042:
                        cursor.execute(f"DROP TABLE {partition.name}")
