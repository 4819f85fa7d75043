"""Placeholder (filled in by its change)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0004_metric_minutes")]

    operations = []
