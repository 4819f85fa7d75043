"""The error group hour key carries the count after migration 0020 (a sparkline's per-group hour reads become
index-only scans), stays the key ingest's upsert names, and is rebuilt without the count when reversed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from telemetry.error_groups import HOURS_TABLE, Occurrence, record
from telemetry.fingerprints import Fingerprint, Source
from tests.telemetry.migrations.migrating import migrate, previous

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0020_error_group_hour_counts_in_key")
MINUTE = datetime(2026, 5, 4, 10, 17, tzinfo=UTC)


def key_columns() -> tuple[list[str], list[str]]:
    """The hour key's key columns and its included ones."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT a.attname, k.n <= i.indnkeyatts
               FROM pg_index AS i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
               JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n""", [HOURS_TABLE])
        rows = cursor.fetchall()
    return [name for name, key in rows if key], [name for name, key in rows if not key]


def test_the_hour_key_includes_the_count_and_ingest_still_adds_to_it():
    migrate(previous(THIS))
    assert key_columns() == (["fingerprint", "hour"], [])

    migrate(THIS)

    assert key_columns() == (["fingerprint", "hour"], ["count"])
    fingerprint = Fingerprint.of(Source.LOG.value, "vc-server", "db.query_failed", "timeout after 30 s")
    for _ in range(2):  # the second request adds to the row the first made (ON CONFLICT on this key)
        record([Occurrence(fingerprint, MINUTE, "db.query_failed", "timeout after 30 s")])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT hour, count FROM {HOURS_TABLE} WHERE fingerprint = %s", [fingerprint.as_int])
        assert cursor.fetchall() == [(MINUTE.replace(minute=0), 2)]


def test_reversed_the_key_holds_no_count_again():
    migrate(THIS)
    migrate(previous(THIS))
    assert key_columns() == (["fingerprint", "hour"], [])
    migrate(THIS)
