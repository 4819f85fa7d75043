"""The configuration system check: readable errors for thresholds, settings, links and typos."""

from __future__ import annotations

from command_center import checks


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_defaults_pass():
    assert checks.threshold_messages({}) == []


def test_warn_on_the_wrong_side_of_crit_is_an_error():
    messages = checks.threshold_messages({"COMMAND_CENTER_VOICE_JOIN_SUCCESS_WARN_PCT": "70"})
    assert ids(messages) == ["command_center.E002"]
    assert "COMMAND_CENTER_VOICE_JOIN_SUCCESS_WARN_PCT=70 must be higher than" in messages[0].msg


def test_a_threshold_that_is_not_a_number_is_an_error():
    messages = checks.threshold_messages({"COMMAND_CENTER_MEMORY_CRIT_PCT": "ninety"})
    assert ids(messages) == ["command_center.E001"]
    assert "COMMAND_CENTER_MEMORY_CRIT_PCT must be a number" in messages[0].msg


def test_unknown_command_center_variables_are_flagged_as_typos():
    env = {
        "COMMAND_CENTER_API_LATENCY_P95_WARN_MS": "200",
        "COMMAND_CENTER_API_LATENCY_WARN": "1",
        "PATH": "/bin",
    }
    messages = checks.unknown_variable_messages(env)
    assert [m.msg for m in messages] == [
        "Unknown setting COMMAND_CENTER_API_LATENCY_WARN (a typo?); it has no effect"
    ]


def test_bad_settings_and_link_templates(settings):
    settings.COMMAND_CENTER_TRACE_SLOW_MS = 0
    settings.COMMAND_CENTER_TEMPO_TRACE_URL = "https://tempo.example/trace/"
    settings.COMMAND_CENTER_GRAFANA_URL = "grafana.example"
    settings.COMMAND_CENTER_PROBE_TIMEOUT_SECONDS = 60
    assert sorted(ids(checks.setting_messages())) == [
        "command_center.E003",
        "command_center.E004",
        "command_center.E005",
        "command_center.E006",
    ]


def test_good_link_settings_pass(settings):
    settings.COMMAND_CENTER_TEMPO_TRACE_URL = "https://tempo.example/trace/{trace_id}"
    settings.COMMAND_CENTER_LOKI_QUERY_URL = "https://loki.example/explore?from={from}&to={to}"
    assert checks.setting_messages() == []


def test_the_check_is_registered():
    from django.core.checks.registry import registry

    assert checks.command_center_configuration in registry.get_checks()
