"""Placeholder (filled in by its change)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0005_compact_trace_index")]

    operations = []
