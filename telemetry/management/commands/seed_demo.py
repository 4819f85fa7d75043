"""`manage.py seed_demo --days N --profile light|heavy|storm`: backfill demo history."""

from __future__ import annotations

import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from telemetry.ingest.seed import DayReport, seed_history
from telemetry.simulator.profiles import PROFILES, get_profile


class Command(BaseCommand):
    help = ("Backfill N days of simulated Kaiku telemetry through the receiver's conversion and storage "
            "code. Idempotent per UTC day: days already seeded are skipped.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=7, help="UTC days to seed, ending today (1..30)")
        parser.add_argument("--profile", choices=sorted(PROFILES), default="light")
        parser.add_argument("--step-seconds", type=int, default=900,
                            help="simulated seconds per step; metrics are exported once a step (default 900)")

    def handle(self, *args, **options) -> None:
        if not 1 <= options["days"] <= 30:
            raise CommandError("--days must be between 1 and 30 (the retention window)")
        if not 1 <= options["step_seconds"] <= 3600:
            raise CommandError("--step-seconds must be between 1 and 3600")
        started = time.perf_counter()
        report = seed_history(options["days"], get_profile(options["profile"]),
                              step=timedelta(seconds=options["step_seconds"]), on_day=self._progress)
        seeded = [day for day in report.days if not day.skipped]
        self.stdout.write(self.style.SUCCESS(
            f"seeded {len(seeded)} day(s), skipped {len(report.days) - len(seeded)} already seeded, "
            f"in {time.perf_counter() - started:.1f} s"))

    def _progress(self, day: DayReport) -> None:
        if day.skipped:
            self.stdout.write(f"{day.day}: already seeded, skipped")
            return
        self.stdout.write(f"{day.day}: {day.data_points} data points, {day.log_records} log records, "
                          f"{day.spans} spans, {day.voice_rows} voice rows -> {day.samples} samples")
