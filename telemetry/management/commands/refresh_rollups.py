"""`manage.py refresh_rollups`: bring the hourly trend rollup up to date now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from telemetry.rollups import refresh_rollups


class Command(BaseCommand):
    help = "Refresh the hourly telemetry trend rollup."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true",
                            help="recompute every hour, not only the changed ones (after a backfill)")

    def handle(self, *args, full: bool, **options):
        try:
            durations = refresh_rollups(full=full)
        except DatabaseError as error:
            raise CommandError(f"rollup refresh failed: {str(error).strip().splitlines()[0]}") from None
        for table, duration_ms in durations.items():
            self.stdout.write(f"{table}: refreshed in {duration_ms} ms")
