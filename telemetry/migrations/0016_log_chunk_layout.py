"""Placeholder for the next layout of the log chunks (issue 15); filled in by the change that needs it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0015_error_group_hours")]

    operations: list = []
