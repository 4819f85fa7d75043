"""Thresholds, status colours and the Voice Health Score (contract section 10), and where the effective
thresholds come from: the COMMAND_CENTER_* variables the settings read at start-up."""

from __future__ import annotations

import pytest
from django.test import override_settings

from command_center import checks
from command_center.thresholds import (
    DEFAULT_THRESHOLDS,
    Status,
    load_thresholds,
    status_for,
    threshold_errors,
    thresholds,
    voice_health_score,
)


def test_defaults_follow_the_contract_table():
    assert set(DEFAULT_THRESHOLDS) == {
        "api_latency_p95_ms",
        "api_error_rate_pct",
        "db_pool_pct",
        "db_query_p95_ms",
        "voice_join_success_pct",
        "voice_packet_loss_p95_pct",
        "voice_jitter_p95_ms",
        "voice_crash_rate_pct",
        "otel_export_failure_pct",
        "otel_dropped_spans",
        "memory_pct",
    }
    latency = DEFAULT_THRESHOLDS["api_latency_p95_ms"]
    assert (latency.warn, latency.crit, latency.higher_is_worse) == (200, 1000, True)
    assert latency.env_crit == "COMMAND_CENTER_API_LATENCY_P95_CRIT_MS"
    join = DEFAULT_THRESHOLDS["voice_join_success_pct"]
    assert (join.warn, join.crit, join.higher_is_worse) == (95, 80, False)
    assert DEFAULT_THRESHOLDS["otel_dropped_spans"].env_warn == "COMMAND_CENTER_OTEL_DROPPED_SPANS_WARN"
    assert threshold_errors(DEFAULT_THRESHOLDS) == []


def test_load_thresholds_reads_command_center_variables():
    thresholds = load_thresholds(
        {
            "COMMAND_CENTER_API_LATENCY_P95_WARN_MS": "300",
            "COMMAND_CENTER_MEMORY_CRIT_PCT": " 95.5 ",
            "COMMAND_CENTER_DB_POOL_WARN_PCT": "",
        }
    )
    assert thresholds["api_latency_p95_ms"].warn == 300
    assert thresholds["api_latency_p95_ms"].crit == 1000
    assert thresholds["memory_pct"].crit == 95.5
    assert thresholds["db_pool_pct"].warn == 70
    assert load_thresholds({}) == dict(DEFAULT_THRESHOLDS)


@pytest.mark.parametrize("bad", ["fast", "1e999", "nan", "-5", "10%"])
def test_a_bad_threshold_number_names_its_variable(bad):
    with pytest.raises(ValueError, match="COMMAND_CENTER_VOICE_JITTER_P95_CRIT_MS"):
        load_thresholds({"COMMAND_CENTER_VOICE_JITTER_P95_CRIT_MS": bad})


def test_threshold_errors_report_a_warn_not_on_the_green_side_of_its_crit():
    thresholds = load_thresholds(
        {
            "COMMAND_CENTER_API_ERROR_RATE_WARN_PCT": "5",
            "COMMAND_CENTER_VOICE_JOIN_SUCCESS_WARN_PCT": "70",
            "COMMAND_CENTER_DB_POOL_WARN_PCT": "69",
        }
    )
    assert threshold_errors(thresholds) == [
        "COMMAND_CENTER_API_ERROR_RATE_WARN_PCT=5 must be lower than COMMAND_CENTER_API_ERROR_RATE_CRIT_PCT=5"
        " (API error rate (5xx))",
        "COMMAND_CENTER_VOICE_JOIN_SUCCESS_WARN_PCT=70 must be higher than"
        " COMMAND_CENTER_VOICE_JOIN_SUCCESS_CRIT_PCT=80 (Voice join success)",
    ]


@pytest.mark.parametrize(
    ("key", "value", "status"),
    [
        ("api_latency_p95_ms", 199.9, Status.GREEN),
        ("api_latency_p95_ms", 200, Status.YELLOW),
        ("api_latency_p95_ms", 1000, Status.YELLOW),
        ("api_latency_p95_ms", 1000.1, Status.RED),
        ("otel_dropped_spans", 0, Status.GREEN),
        ("otel_dropped_spans", 1, Status.YELLOW),
        ("otel_dropped_spans", 100, Status.YELLOW),
        ("otel_dropped_spans", 101, Status.RED),
        ("voice_join_success_pct", 95.1, Status.GREEN),
        ("voice_join_success_pct", 95, Status.YELLOW),
        ("voice_join_success_pct", 80, Status.YELLOW),
        ("voice_join_success_pct", 79.9, Status.RED),
    ],
)
def test_status_edges(key, value, status):
    assert status_for(value, DEFAULT_THRESHOLDS[key]) == status


@pytest.mark.parametrize("value", [None, float("nan"), "12"])
def test_status_of_a_non_number_is_a_clear_error(value):
    with pytest.raises(ValueError, match="api_latency_p95_ms"):
        status_for(value, DEFAULT_THRESHOLDS["api_latency_p95_ms"])


@pytest.mark.parametrize(
    ("inputs", "score"),
    [
        ((99.0, 0.5, 10, 0.0), 100.0),  # all at or better than green
        ((95.0, 2.0, 30, 1.0), 100.0),  # exactly on the green edges
        ((80.0, 5.0, 100, 5.0), 0.0),  # exactly on the red edges
        ((87.5, 3.5, 65, 3.0), 50.0),  # every signal half-way: 40*.5 + 30*.5 + 20*.5 + 10*.5
        ((92.0, 1.0, 100, 0.0), 40 * 0.8 + 30 + 0 + 10),  # join (92-80)/15 = 0.8, jitter at red
        ((50.0, 4.0, 44, 2.0), 0 + 30 / 3 + 20 * 0.8 + 10 * 0.75),  # = 33.5
    ],
)
def test_voice_health_score_hand_computed(inputs, score):
    result, components = voice_health_score(*inputs, DEFAULT_THRESHOLDS)
    assert result == pytest.approx(score)
    assert set(components) == {
        "voice_join_success_pct",
        "voice_packet_loss_p95_pct",
        "voice_jitter_p95_ms",
        "voice_crash_rate_pct",
    }


def test_voice_health_score_components_are_the_per_signal_fractions():
    _, components = voice_health_score(92.0, 1.0, 100, 3.0, DEFAULT_THRESHOLDS)
    assert components == pytest.approx(
        {
            "voice_join_success_pct": 0.8,
            "voice_packet_loss_p95_pct": 1.0,
            "voice_jitter_p95_ms": 0.0,
            "voice_crash_rate_pct": 0.5,
        }
    )


def test_voice_health_score_without_data_rescales_or_is_none():
    score, components = voice_health_score(87.5, None, None, None, DEFAULT_THRESHOLDS)
    assert score == pytest.approx(50.0)
    assert components == {"voice_join_success_pct": 0.5}
    assert voice_health_score(None, None, None, None, DEFAULT_THRESHOLDS) == (None, {})


def test_voice_health_score_uses_the_configured_thresholds():
    thresholds = load_thresholds({"COMMAND_CENTER_VOICE_JITTER_P95_CRIT_MS": "200"})
    score, _ = voice_health_score(100.0, 0.0, 115, 0.0, thresholds)
    assert score == pytest.approx(40 + 30 + 20 * 0.5 + 10)


def test_the_effective_thresholds_are_the_variables_the_settings_read_not_the_environment_now(monkeypatch):
    with override_settings(COMMAND_CENTER_THRESHOLD_ENV={"COMMAND_CENTER_API_LATENCY_P95_WARN_MS": "300"}):
        monkeypatch.setenv("COMMAND_CENTER_API_LATENCY_P95_WARN_MS", "400")
        assert thresholds()["api_latency_p95_ms"].warn == 300
        assert thresholds()["api_latency_p95_ms"].crit == 1000
    with override_settings(COMMAND_CENTER_THRESHOLD_ENV={}):
        assert thresholds() == dict(DEFAULT_THRESHOLDS)


def test_the_start_up_check_judges_the_variables_the_settings_read():
    with override_settings(COMMAND_CENTER_THRESHOLD_ENV={"COMMAND_CENTER_MEMORY_CRIT_PCT": "ninety",
                                                         "COMMAND_CENTER_MEMORY_CRIT": "1"}):
        messages = checks.command_center_configuration()
    assert [message.id for message in messages] == ["command_center.E001", "command_center.W001"]
