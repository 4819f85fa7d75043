import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from telemetry.checks import check_packing, check_retention_tiers


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
