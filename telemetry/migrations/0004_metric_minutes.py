"""`telemetry_metric_minutes`: every label set of a metric merged per minute (see telemetry/minutes.py).

A cache miss of an unlabelled 24-hour chart merged 144,000 latency samples at `heavy`; the minute table
holds about 1,440 rows for it. Daily partitions like the samples; filled from the existing samples here.
"""

import django.contrib.postgres.fields
from django.db import migrations, models

from telemetry import minutes
from telemetry.partitions import ensure_partitions


def create_partitions_and_backfill(apps, schema_editor):
    using = schema_editor.connection.alias
    ensure_partitions(using=using, tables=[minutes.MINUTES_TABLE])
    minutes.backfill(using=using)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0003_incremental_hourly_rollup")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(minutes.schema_sql(), minutes.DROP_SCHEMA_SQL)],
            state_operations=[
                migrations.CreateModel(
                    name="MetricMinute",
                    fields=[
                        ("pk", models.CompositePrimaryKey("metric_name", "ts", "scope", "split", "bucket_bounds",
                                                          blank=True, editable=False, primary_key=True,
                                                          serialize=False)),
                        ("ts", models.DateTimeField()),
                        ("metric_name", models.TextField()),
                        ("scope", models.TextField()),
                        ("split", models.TextField()),
                        ("bucket_bounds", django.contrib.postgres.fields.ArrayField(
                            base_field=models.FloatField(), size=None)),
                        ("sample_rows", models.IntegerField()),
                        ("value_count", models.BigIntegerField(null=True)),
                        ("value_sum", models.FloatField(null=True)),
                        ("total", models.FloatField(null=True)),
                        ("bucket_counts", django.contrib.postgres.fields.ArrayField(
                            base_field=models.BigIntegerField(), null=True, size=None)),
                    ],
                    options={"db_table": "telemetry_metric_minutes", "managed": False},
                ),
            ],
        ),
        migrations.RunPython(create_partitions_and_backfill, migrations.RunPython.noop),
    ]
