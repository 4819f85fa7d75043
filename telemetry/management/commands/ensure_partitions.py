"""`manage.py ensure_partitions`: create the daily partitions around today (run before a backfill), by the same
policy as the beat job (`telemetry.partitions.ensure_kept_partitions`)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from telemetry.jobs import Job, job_run
from telemetry.partitions import DEFAULT_DAYS_AHEAD, DEFAULT_DAYS_BACK, ensure_kept_partitions


class Command(BaseCommand):
    help = "Create missing daily partitions of the telemetry tables (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--days-back", type=int, default=DEFAULT_DAYS_BACK, metavar="DAYS")
        parser.add_argument("--days-ahead", type=int, default=DEFAULT_DAYS_AHEAD, metavar="DAYS")

    def handle(self, *args, days_back: int, days_ahead: int, **options):
        if not 0 <= days_back <= DEFAULT_DAYS_BACK or not 0 <= days_ahead <= 30:
            raise CommandError(f"--days-back must be 0-{DEFAULT_DAYS_BACK} and --days-ahead 0-30")
        try:
            with job_run(Job.ENSURE_PARTITIONS) as details:
                created = ensure_kept_partitions(days_back=days_back, days_ahead=days_ahead)
                details["created"] = created
        except DatabaseError as error:
            raise CommandError(f"creating partitions failed: {str(error).strip().splitlines()[0]}") from None
        self.stdout.write(f"created {len(created)} partitions" + (f": {', '.join(created)}" if created else ""))
