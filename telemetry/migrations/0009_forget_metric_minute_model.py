"""Django forgets the `MetricMinute` model; the table `telemetry_metric_minutes` stays exactly as it is.

No code read the table through the model (`telemetry.queries.metrics` reads it with SQL, `telemetry.minutes`
writes it), and the model was unmanaged, so this changes Django's migration state only: no SQL runs either way.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0008_slim_metric_minutes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="MetricMinute")],
        ),
    ]
