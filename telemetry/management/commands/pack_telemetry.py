"""`manage.py pack_telemetry`: pack every due hour of logs and spans now (beat does it every 10 minutes)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from telemetry.packing import pack_due


class Command(BaseCommand):
    help = ("Move the log records and spans of every whole hour that ended TELEMETRY_PACK_AFTER_MINUTES ago "
            "into compressed chunks (idempotent; each hour in its own transaction).")

    def handle(self, *args, **options):
        try:
            report = pack_due()
        except DatabaseError as error:
            raise CommandError(f"packing failed (hours packed before the failure stay packed): "
                               f"{str(_first_database_error(error)).strip().splitlines()[0]}") from None
        self.stdout.write(f"packed the hours before {report.horizon:%Y-%m-%d %H:%M} UTC "
                          f"(older than {settings.TELEMETRY_PACK_AFTER_MINUTES} minutes):")
        for table, rows in report.rows_packed.items():
            self.stdout.write(f"  {table}: {rows} rows packed from {report.hours_packed[table]} hours")
        self.stdout.write(f"Packed {report.total_rows} rows in {report.duration_ms / 1000:.2f} s")


def _first_database_error(error: DatabaseError) -> BaseException:
    """When recording the failed run fails too (the database went away), the error it was handling is the cause."""
    first, seen = error, error.__context__
    while seen is not None:
        if isinstance(seen, DatabaseError):
            first = seen
        seen = seen.__context__
    return first
