"""`manage.py purge_telemetry`: remove telemetry older than N days (at most the 30-day cap)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from telemetry.contract import RETENTION_DAYS
from telemetry.retention import RETENTION_TABLES, RetentionError, enforce_retention, validate_retention_args


class Command(BaseCommand):
    help = f"Delete telemetry older than --older-than days (1-{RETENTION_DAYS}) and refresh the rollups."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=RETENTION_DAYS, metavar="DAYS",
                            help=f"remove rows older than DAYS days, 1-{RETENTION_DAYS} (default {RETENTION_DAYS})")
        parser.add_argument("--table", action="append", dest="tables", metavar="NAME",
                            help=f"only this table (repeatable); one of: {', '.join(RETENTION_TABLES)} "
                                 f"(the log and trace tables include their packed rows)")
        parser.add_argument("--dry-run", action="store_true", help="print what would be removed; change nothing")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive",
                            help="do not ask for confirmation")

    def handle(self, *args, older_than: int, tables: list[str] | None, dry_run: bool, interactive: bool,
               **options):
        try:
            validate_retention_args(older_than, tables)
        except RetentionError as error:
            raise CommandError(str(error)) from None
        if not dry_run and interactive:
            which = ", ".join(tables) if tables else "all telemetry tables"
            answer = input(f"Permanently delete rows older than {older_than} days from {which}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("purge cancelled; nothing was deleted")
        started = time.perf_counter()
        try:
            report = enforce_retention(older_than_days=older_than, tables=tables, dry_run=dry_run)
        except RetentionError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:  # e.g. the database is unreachable
            raise CommandError(f"purge failed: {str(error).strip().splitlines()[0]}") from None
        verb = "would remove" if dry_run else "removed"
        self.stdout.write(f"{'Dry run: ' if dry_run else ''}cutoff {report.cutoff:%Y-%m-%d %H:%M:%S} UTC")
        for report_line in (*report.tables, *report.tiers):
            name = f"{report_line.table}, {report_line.tier}" if report_line.tier else report_line.table
            packed = f" ({report_line.packed_rows_deleted} of them packed)" if report_line.packed_rows_deleted else ""
            self.stdout.write(f"  {name}: {verb} {report_line.rows_deleted} rows{packed}, "
                              f"{len(report_line.partitions_dropped)} partitions ({report_line.duration_ms} ms)")
        if report.rollups_refreshed:
            self.stdout.write("  rollups refreshed")
        self.stdout.write(f"{'Would remove' if dry_run else 'Removed'} {report.rows_deleted} rows and "
                          f"{report.partitions_dropped} partitions in {time.perf_counter() - started:.2f} s")
