"""A slimmer `telemetry_metric_minutes` (see telemetry/minutes.py): the metric, scope, split and bucket bounds
of a row are stored once per distinct combination in `telemetry_metric_minute_keys` and referenced by an
integer id, which with the minute is the unique key (instead of the text columns and the float8[]); bucket
counts are int4 unless a count does not fit (then int8, in their own column); columns are ordered so the row
carries no alignment padding.

The table is rebuilt: the old one and its partitions are renamed aside, the new one gets partitions with the
same names and bounds, the rows are converted into it and the old one is dropped, in this migration's
transaction. The reverse converts back to the layout of migration 0004, whose SQL it reuses.

The forward SQL is the module's current layout: a later layout change must freeze it here first, as this
migration froze migration 0004's.
"""

import importlib

import django.contrib.postgres.fields
from django.db import migrations, models

from telemetry import minutes

OLD_SUFFIX = "_old"
V1 = importlib.import_module("telemetry.migrations.0004_metric_minutes")


def _rebuild(cursor, create_sql: str, copy_sql: str, after_sql: str = "") -> None:
    """Replace the minute table by the one `create_sql` makes, with the same partitions, rows copied by
    `copy_sql` (reading `<table>_old`); `after_sql` runs once the old table is gone."""
    table = minutes.MINUTES_TABLE
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [minutes.SAMPLES_LOCK])
    cursor.execute(
        """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i
           JOIN pg_class AS c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY c.relname""",
        [table],
    )
    partitions = cursor.fetchall()
    cursor.execute(minutes.DROP_FUNCTIONS_SQL)
    cursor.execute(f"DROP INDEX {table}_key")
    for name, _ in partitions:
        cursor.execute(f"ALTER TABLE {name} RENAME TO {name}{OLD_SUFFIX}")
    cursor.execute(f"ALTER TABLE {table} RENAME TO {table}{OLD_SUFFIX}")
    cursor.execute(create_sql)
    for name, bound in partitions:
        if bound != "DEFAULT":
            cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} {bound}")
    cursor.execute(copy_sql)
    cursor.execute(f"DROP TABLE {table}{OLD_SUFFIX}")
    if after_sql:
        cursor.execute(after_sql)


def slim(apps, schema_editor):
    old = minutes.MINUTES_TABLE + OLD_SUFFIX
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, minutes.schema_sql(), f"""
            INSERT INTO {minutes.KEYS_TABLE} (metric_name, scope, split, bounds)
            SELECT DISTINCT metric_name, scope, split, bucket_bounds FROM {old};
            INSERT INTO {minutes.MINUTES_TABLE} ({", ".join(minutes.MINUTE_COLUMNS)})
            SELECT o.ts, k.id, o.sample_rows, o.value_count, o.value_sum, o.total,
                   CASE WHEN telemetry_fits_int4(o.bucket_counts) THEN o.bucket_counts::integer[] END,
                   CASE WHEN NOT telemetry_fits_int4(o.bucket_counts) THEN o.bucket_counts END
            FROM {old} AS o
            JOIN {minutes.KEYS_TABLE} AS k ON k.metric_name = o.metric_name AND k.scope = o.scope
                                          AND k.split = o.split AND k.bounds = o.bucket_bounds""")


def unslim(apps, schema_editor):
    old = minutes.MINUTES_TABLE + OLD_SUFFIX
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, V1.SCHEMA_SQL, f"""
            INSERT INTO {minutes.MINUTES_TABLE} (ts, metric_name, scope, split, bucket_bounds, sample_rows,
                                                 value_count, value_sum, total, bucket_counts)
            SELECT o.ts, k.metric_name, k.scope, k.split, k.bounds, o.sample_rows, o.value_count, o.value_sum,
                   o.total, coalesce(o.bucket_counts::bigint[], o.bucket_counts_wide)
            FROM {old} AS o JOIN {minutes.KEYS_TABLE} AS k ON k.id = o.key_id""",
                 f"DROP TABLE {minutes.KEYS_TABLE}; DROP FUNCTION telemetry_fits_int4(bigint[]);")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0007_packed_logs_and_traces")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(slim, unslim)],
            state_operations=[
                migrations.DeleteModel(name="MetricMinute"),
                migrations.CreateModel(
                    name="MetricMinute",
                    fields=[
                        ("pk", models.CompositePrimaryKey("key_id", "ts", blank=True, editable=False,
                                                          primary_key=True, serialize=False)),
                        ("ts", models.DateTimeField()),
                        ("value_count", models.BigIntegerField(null=True)),
                        ("value_sum", models.FloatField(null=True)),
                        ("total", models.FloatField(null=True)),
                        ("key_id", models.IntegerField()),
                        ("sample_rows", models.IntegerField()),
                        ("bucket_counts", django.contrib.postgres.fields.ArrayField(
                            base_field=models.IntegerField(), null=True, size=None)),
                        ("bucket_counts_wide", django.contrib.postgres.fields.ArrayField(
                            base_field=models.BigIntegerField(), null=True, size=None)),
                    ],
                    options={"db_table": "telemetry_metric_minutes", "managed": False},
                ),
            ],
        ),
    ]
