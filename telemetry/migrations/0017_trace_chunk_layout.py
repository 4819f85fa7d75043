"""Placeholder for the next layout of the trace chunks (issue 15); filled in by the change that needs it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0016_log_chunk_layout")]

    operations: list = []
