"""`telemetry_service_instances`: service, instance, version and environment as the platform's OTLP resources
report them, with first/last seen times (see telemetry/service_instances.py). Not partitioned: one row per
service instance; retention deletes rows not seen for 30 days."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0005_compact_trace_index")]

    operations = [
        migrations.CreateModel(
            name="ServiceInstance",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("service", models.TextField()),
                ("instance_id", models.TextField()),
                ("version", models.TextField(null=True)),
                ("environment", models.TextField(null=True)),
                ("first_seen", models.DateTimeField()),
                ("last_seen", models.DateTimeField()),
                ("version_first_seen", models.DateTimeField(null=True)),
            ],
            options={
                "db_table": "telemetry_service_instances",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("service", "instance_id"), name="telemetry_service_instance_unique"
                    ),
                ],
                "indexes": [models.Index(fields=["last_seen"], name="telemetry_service_inst_seen")],
            },
        ),
    ]
