"""`manage.py purge_telemetry`, `refresh_rollups` and `ensure_partitions` as an operator uses them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from telemetry.jobs import Job, last_run
from telemetry.models import LogEvent, MetricSample
from telemetry.packing import LOG_VIEW, pack_due
from telemetry.partitions import day_partitions
from tests.factories import LogEventFactory, MetricSampleFactory

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


def _purge(*args: str, answer: str | None = None, monkeypatch=None) -> str:
    out = StringIO()
    if answer is not None:
        monkeypatch.setattr("builtins.input", lambda prompt: answer)
    call_command("purge_telemetry", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def old_and_new_rows(db):
    old = timezone.now() - timedelta(days=12)
    return [LogEventFactory(ts=old), LogEventFactory(), MetricSampleFactory(ts=old), MetricSampleFactory()]


@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=1)
def test_dry_run_prints_what_would_go_and_changes_nothing(old_and_new_rows):
    output = _purge("--dry-run", "--older-than", "10")

    assert "telemetry_log_events: would remove 1 rows" in output
    assert "telemetry_metric_samples: would remove 1 rows" in output
    assert "telemetry_metric_minutes: would remove 1 rows" in output  # the old sample's minute
    # the sample tier would remove nothing more: the 12-day-old sample is counted once, above
    assert "telemetry_metric_samples, minute samples older than 1 day: would remove 0 rows" in output
    assert "Would remove 3 rows" in output
    assert LogEvent.objects.count() == 2 and MetricSample.objects.count() == 2
    assert last_run(Job.PURGE) is None


def test_noinput_purges_the_chosen_tables_and_reports_elapsed_time(old_and_new_rows):
    output = _purge("--noinput", "--older-than", "10", "--table", "telemetry_log_events")

    assert "telemetry_log_events: removed 1 rows" in output
    assert "telemetry_metric_samples" not in output
    assert " in " in output.splitlines()[-1] and output.rstrip().endswith(" s")
    assert LogEvent.objects.count() == 1 and MetricSample.objects.count() == 2


def test_without_noinput_it_asks_and_a_no_deletes_nothing(old_and_new_rows, monkeypatch):
    with pytest.raises(CommandError, match="cancelled; nothing was deleted"):
        _purge("--older-than", "10", answer="n", monkeypatch=monkeypatch)
    assert LogEvent.objects.count() == 2

    _purge("--older-than", "10", answer="yes", monkeypatch=monkeypatch)
    assert LogEvent.objects.count() == 1


def _stored_logs() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {LOG_VIEW}")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_purging_the_log_table_covers_packed_records_and_the_dry_run_counts_them_exactly():
    old = timezone.now() - timedelta(days=12)
    LogEventFactory(ts=old)
    LogEventFactory(ts=old + timedelta(minutes=1))
    LogEventFactory()
    pack_due()  # the two old records are now packed
    LogEventFactory(ts=old + timedelta(minutes=2))  # a late one, still a row

    output = _purge("--dry-run", "--older-than", "10", "--table", "telemetry_log_events")
    assert "telemetry_log_events: would remove 3 rows (2 of them packed)" in output
    assert _stored_logs() == 4

    output = _purge("--noinput", "--older-than", "10", "--table", "telemetry_log_events")
    assert "telemetry_log_events: removed 3 rows (2 of them packed)" in output
    assert _stored_logs() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["--older-than", "31"], "never kept longer than 30 days"),
    (["--older-than", "0"], "from 1 to 30"),
    (["--table", "auth_user"], "unknown table auth_user; valid tables: telemetry_metric_samples"),
    (["--table", "telemetry_trace_chunks"], "purge telemetry_trace_index, which covers both"),
])
def test_bad_arguments_raise_a_clear_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        _purge("--noinput", *args)


@pytest.mark.parametrize("args", [["--older-than", "45"], ["--table", "nope"], ["--older-than", "ten"]])
def test_bad_arguments_exit_non_zero_with_one_line(args):
    result = subprocess.run([sys.executable, str(MANAGE_PY), "purge_telemetry", "--noinput", *args],
                            capture_output=True, text=True, timeout=120, env=os.environ.copy())

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line.lower()]) == 1


@pytest.mark.django_db
def test_refresh_rollups_and_ensure_partitions_commands_report_what_they_did():
    out = StringIO()
    call_command("refresh_rollups", "--full", stdout=out)
    call_command("ensure_partitions", stdout=out)

    assert "telemetry_trend_rollups_hourly: refreshed in" in out.getvalue()
    assert "created 0 partitions" in out.getvalue()
    assert last_run(Job.ENSURE_PARTITIONS).details == {"created": []}


@pytest.mark.django_db
@override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=3)
def test_ensure_partitions_command_follows_the_beat_jobs_policy_for_the_sample_tier(frozen_now):
    call_command("purge_telemetry", "--noinput", stdout=StringIO())  # drops the sample partitions made 31 days back
    out = StringIO()

    call_command("ensure_partitions", stdout=out)

    assert "telemetry_metric_samples_" not in out.getvalue()
    assert min(p.day for p in day_partitions("telemetry_metric_samples")) >= frozen_now.date() - timedelta(days=3)
    assert min(p.day for p in day_partitions("telemetry_log_events")) <= frozen_now.date() - timedelta(days=30)
