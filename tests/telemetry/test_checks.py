import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from telemetry.checks import check_packing, check_required_extensions, check_retention_tiers

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_settings_pass():
    assert check_retention_tiers() == []
    assert check_packing() == []


@pytest.mark.parametrize("value", [0, 31, -3, "3", 2.5, True])
@pytest.mark.parametrize("name", ["TELEMETRY_SAMPLE_RETENTION_DAYS", "TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS"])
def test_a_tier_outside_one_to_thirty_days_is_an_error_naming_the_setting(settings, name, value):
    setattr(settings, name, value)

    [message] = check_retention_tiers()
    assert message.level == checks.ERROR and message.id == "telemetry.E001"
    assert message.msg.startswith(f"{name} must be a whole number of days from 1 to 30")


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_a_sample_rate_outside_zero_to_one_is_an_error(settings, rate):
    settings.TELEMETRY_TRACE_SAMPLE_RATE = rate

    [message] = check_retention_tiers()
    assert message.id == "telemetry.E002" and "TELEMETRY_TRACE_SAMPLE_RATE" in message.msg


def test_manage_py_check_refuses_a_bad_tier(settings):
    settings.TELEMETRY_SAMPLE_RETENTION_DAYS = 45

    with pytest.raises(SystemCheckError, match="TELEMETRY_SAMPLE_RETENTION_DAYS must be a whole number"):
        call_command("check")


@pytest.mark.parametrize("value", [10, 60, 1440])
def test_packing_from_ten_minutes_to_a_day_after_the_hour_passes(settings, value):
    settings.TELEMETRY_PACK_AFTER_MINUTES = value

    assert check_packing() == []


@pytest.mark.parametrize("value", [0, 9, 1441, -60, "60", 60.0, True])
def test_packing_delay_outside_ten_minutes_to_a_day_is_an_error_naming_the_setting(settings, value):
    settings.TELEMETRY_PACK_AFTER_MINUTES = value

    [message] = check_packing()
    assert message.level == checks.ERROR and message.id == "telemetry.E003"
    assert message.msg.startswith("TELEMETRY_PACK_AFTER_MINUTES must be a whole number of minutes from 10 to 1440")


def test_the_server_offers_the_extensions_migration_0011_creates(db):
    assert check_required_extensions(databases=["default"]) == []


def test_the_extension_check_asks_the_database_only_when_a_command_names_it():
    assert check_required_extensions() == []  # e.g. runserver: no query at start-up


@pytest.mark.slow
def test_migrate_on_a_postgresql_without_contrib_stops_in_one_line_naming_the_extensions(tmp_path):
    """pgserver's PostgreSQL 16.2 (the old embedded server) ships no contrib: migrate refuses before it starts."""
    pgserver = pytest.importorskip("pgserver")
    with pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop") as server:
        socket_dir = server.get_postmaster_info().socket_dir
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTEST_CURRENT_TEST")}
        env["DATABASE_URL"] = f"postgres://postgres@/postgres?host={quote(str(socket_dir))}"  # its socket
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        applied = server.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'django_migrations';")
    assert result.returncode == 1
    assert ("cannot create the extension pg_trgm or btree_gin (PostgreSQL's contrib, which the telemetry "
            "indexes need)") in result.stderr
    assert "(telemetry.E004)" in result.stderr and "Traceback" not in result.stderr
    assert " 0\n" in applied  # stopped before the first migration
