"""The upgrade of a database already counting error groups per minute (migration 0015): the new hour table
starts as the sums of the minute rows stored, so windows read through it count what they counted before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from telemetry.error_groups import HOURS_TABLE, MINUTES_TABLE
from telemetry.queries.error_groups import groups_in_window

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0015_error_group_hours")
HOUR = datetime(2026, 5, 4, 10, tzinfo=UTC)


def migrate(target: tuple[str, str]) -> None:
    MigrationExecutor(connection).migrate([target])


def test_minute_rows_stored_before_the_migration_are_summed_into_hours():
    (before,) = MigrationExecutor(connection).loader.graph.node_map[THIS].parents
    migrate(before.key)
    minutes = [(HOUR + timedelta(minutes=59), 7, 2), (HOUR + timedelta(hours=1), 7, 3),
               (HOUR + timedelta(hours=1, minutes=30), 7, 4), (HOUR + timedelta(hours=1, minutes=30), 8, 1)]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {MINUTES_TABLE} (ts, fingerprint, count) VALUES (%s, %s, %s)", minutes)
        cursor.execute("INSERT INTO telemetry_error_groups (fingerprint, first_seen, last_seen, source, service,"
                       " event_template, message_template, example_event, example_message)"
                       " SELECT f, %s, %s, 'log', 'vc-server', 'e', 'm', 'e', 'm' FROM unnest(ARRAY[7, 8]) AS f",
                       [HOUR, HOUR + timedelta(hours=2)])

    migrate(THIS)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT hour, fingerprint, count FROM {HOURS_TABLE} ORDER BY 1, 2")
        assert cursor.fetchall() == [(HOUR, 7, 2), (HOUR + timedelta(hours=1), 7, 7), (HOUR + timedelta(hours=1), 8, 1)]
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("telemetry")[0])  # today's reader: today's tables
    counted = {group.group: group.count for group in groups_in_window(HOUR, HOUR + timedelta(hours=2))}
    assert counted == {f"{7:016x}": 9, f"{8:016x}": 1}
