"""The upgrade of a database already counting error groups per minute and hour (migration 0018): the new day
table starts as the sums of the minute rows stored, so windows read through it count what they counted before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from telemetry.error_groups import DAYS_TABLE, HOURS_TABLE, MINUTES_TABLE
from telemetry.queries.error_groups import Span, groups_in_window, tiers

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0018_error_group_days")
DAY = datetime(2026, 5, 4, tzinfo=UTC)


def migrate(target: tuple[str, str]) -> None:
    MigrationExecutor(connection).migrate([target])


def test_minute_rows_stored_before_the_migration_are_summed_into_days():
    (before,) = MigrationExecutor(connection).loader.graph.node_map[THIS].parents
    migrate(before.key)
    minutes = [(DAY - timedelta(minutes=1), 7, 5), (DAY + timedelta(hours=23, minutes=59), 7, 2),
               (DAY + timedelta(days=1), 7, 3), (DAY + timedelta(days=1, hours=12), 7, 4),
               (DAY + timedelta(days=1, hours=12), 8, 1)]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {MINUTES_TABLE} (ts, fingerprint, count) VALUES (%s, %s, %s)", minutes)
        cursor.execute(f"INSERT INTO {HOURS_TABLE} (hour, fingerprint, count) SELECT date_trunc('hour', ts, 'UTC'),"
                       f" fingerprint, sum(count) FROM {MINUTES_TABLE} GROUP BY 1, 2")
        cursor.execute("INSERT INTO telemetry_error_groups (fingerprint, first_seen, last_seen, source, service,"
                       " event_template, message_template, example_event, example_message)"
                       " SELECT f, %s, %s, 'log', 'vc-server', 'e', 'm', 'e', 'm' FROM unnest(ARRAY[7, 8]) AS f",
                       [DAY - timedelta(minutes=1), DAY + timedelta(days=1, hours=12)])

    migrate(THIS)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT day, fingerprint, count FROM {DAYS_TABLE} ORDER BY 1, 2")
        assert cursor.fetchall() == [(DAY - timedelta(days=1), 7, 5), (DAY, 7, 2), (DAY + timedelta(days=1), 7, 7),
                                     (DAY + timedelta(days=1), 8, 1)]
    window = (DAY - timedelta(hours=1), DAY + timedelta(days=2))
    assert tiers(*window).days == [Span(DAY, DAY + timedelta(days=2))]  # read from the day rows
    counted = {group.group: group.count for group in groups_in_window(*window)}
    assert counted == {f"{7:016x}": 14, f"{8:016x}": 1}
