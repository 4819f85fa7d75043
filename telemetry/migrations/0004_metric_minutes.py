"""Placeholder (filled in by its change)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0003_incremental_hourly_rollup")]

    operations = []
