"""`manage.py seed_demo --days N --profile light|heavy|storm [--until ISO]`: backfill demo history."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from telemetry.ingest.seed import RECENT, DayReport, seed_history
from telemetry.simulator.profiles import PROFILES, get_profile


class Command(BaseCommand):
    help = ("Backfill N days of simulated Kaiku telemetry through the receiver's conversion and storage "
            "code, up to --until (default now): the last hour first, at minute resolution and flushed at "
            "once, then the older days. Idempotent per UTC day: what is seeded (or holds data) is skipped.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=7,
                            help="UTC days to seed, ending with the day of --until (1..30)")
        parser.add_argument("--profile", choices=sorted(PROFILES), default="light")
        parser.add_argument("--step-seconds", type=int, default=900,
                            help="simulated seconds per step before the recent hour; metrics are exported "
                                 "once a step (default 900)")
        parser.add_argument("--until", type=_timestamp, default=None,
                            help="ISO 8601 time the history ends at, exclusive, floored to the minute "
                                 "(default now); `make run` passes the start of its live simulator")
        parser.add_argument("--recent-minutes", type=int, default=int(RECENT.total_seconds() // 60),
                            help="minutes before --until seeded first, a step a minute, then flushed (default 60)")

    def handle(self, *args, **options) -> None:
        if not 1 <= options["days"] <= 30:
            raise CommandError("--days must be between 1 and 30 (the retention window)")
        if not 1 <= options["step_seconds"] <= 3600:
            raise CommandError("--step-seconds must be between 1 and 3600")
        if not 0 <= options["recent_minutes"] <= 24 * 60:
            raise CommandError("--recent-minutes must be between 0 and 1440")
        until = options["until"]
        now = datetime.now(UTC)
        if until is not None and not now - timedelta(days=30) < until <= now + timedelta(minutes=1):
            raise CommandError("--until must lie within the last 30 days and not in the future")
        self._started = time.perf_counter()
        report = seed_history(options["days"], get_profile(options["profile"]),
                              step=timedelta(seconds=options["step_seconds"]), until=until,
                              recent=timedelta(minutes=options["recent_minutes"]), on_day=self._progress)
        seeded = {part.day for part in report.days if not part.skipped}
        skipped = {part.day for part in report.days if part.skipped}
        self.stdout.write(self.style.SUCCESS(
            f"seeded {len(seeded)} day(s) up to {report.until:%Y-%m-%d %H:%M} UTC, skipped {len(skipped)} "
            f"already seeded, in {time.perf_counter() - self._started:.1f} s"))

    def _progress(self, part: DayReport) -> None:
        if part.skipped:
            self.stdout.write(f"{part.day}: already seeded, skipped")
            return
        self.stdout.write(
            f"{part.day} {part.start:%H:%M}-{'24:00' if part.end.date() > part.day else f'{part.end:%H:%M}'} "
            f"every {part.step.total_seconds():g} s: "
            f"{part.data_points} data points, {part.log_records} log records, {part.spans} spans, "
            f"{part.voice_rows} voice rows -> {part.samples} samples"
            + (" (recent)" if part.recent else "") + f" [{time.perf_counter() - self._started:.1f} s]")
        self.stdout.flush()


def _timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
