"""The observability contract as code: catalogue, allowlist, forbidden fields, routes, logs, thresholds."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry.contract import (
    CATALOGUE,
    DEFAULT_THRESHOLDS,
    FORBIDDEN_KEY_PREFIXES,
    FORBIDDEN_KEYS,
    LOG_ATTR_ALLOWLIST,
    OVERFLOW_LABELS,
    FeatureFlag,
    Kind,
    Label,
    LogLevel,
    Metric,
    Signal,
    Status,
    allowed_labels,
    canonical_error_type,
    canonical_log_domain,
    filter_log_attrs,
    forbidden_drop_count,
    is_forbidden,
    level_for_severity,
    load_thresholds,
    normalize_route,
    normalize_status_code,
    status_for,
    threshold_errors,
    voice_health_score,
)

# --- catalogue (section 3) -------------------------------------------------------------------------------


def test_catalogue_has_every_metric_once_keyed_by_its_name():
    assert set(CATALOGUE) == {metric.value for metric in Metric}
    assert len(CATALOGUE) == 32
    assert all(spec.name == name for name, spec in CATALOGUE.items())


def test_catalogue_rows_match_the_contract_table():
    http = CATALOGUE["kaiku_http_request_duration_seconds"]
    assert (http.kind, http.signal) == (Kind.HISTOGRAM, Signal.LATENCY)
    assert http.labels == (Label.HTTP_ROUTE, Label.HTTP_METHOD, Label.HTTP_STATUS_CODE)
    assert CATALOGUE["kaiku_otel_dropped_spans_total"].signal == Signal.SATURATION
    assert CATALOGUE["kaiku_voice_sessions_ended_total"].outcomes == ("normal", "crash")
    assert CATALOGUE["kaiku_db_pool_connections_max"].labels == ()


def test_only_client_metrics_sit_behind_the_client_telemetry_flag():
    flagged = {name for name, spec in CATALOGUE.items() if spec.flag is not None}
    assert flagged == {name for name in CATALOGUE if name.startswith("kaiku_client_")}
    assert FeatureFlag.CLIENT_TELEMETRY.env_var == "COMMAND_CENTER_FEATURE_CLIENT_TELEMETRY"


# --- forbidden fields (section 7) ------------------------------------------------------------------------

forbidden_names = st.sampled_from(
    FORBIDDEN_KEYS + tuple(f"{prefix}.anything" for prefix in FORBIDDEN_KEY_PREFIXES)
)
key_prefixes = st.sampled_from(["", "app.", "kaiku.", "foo.bar.", "http.request.header."])


def _random_case(text, flips):
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=False))


@given(name=forbidden_names, prefix=key_prefixes, flips=st.lists(st.booleans(), min_size=40, max_size=40))
def test_forbidden_keys_are_forbidden_in_any_case_under_any_prefix(name, prefix, flips):
    assert is_forbidden(_random_case(prefix + name, flips))


@pytest.mark.parametrize(
    "key",
    [
        "app.user.email",
        "kaiku.password",
        "foo.Authorization",
        "USER_EMAIL",
        "X-Api-Key",
        "enduser.id",
        "kaiku.enduser.role",
        "http.request.header.x-forwarded-for",
        "chat.message.body",
        "Set-Cookie",
        "kaiku.session_id",
        "db.query.text",
    ],
)
def test_examples_of_forbidden_keys(key):
    assert is_forbidden(key)


@pytest.mark.parametrize(
    "key",
    [label.value for label in Label]
    + sorted(LOG_ATTR_ALLOWLIST)
    + ["service.name", "service.instance.id", "kaiku.domain", "tokens_issued", "monkey", "user.agent.name"],
)
def test_allowed_keys_are_not_forbidden(key):
    assert not is_forbidden(key)


@given(name=forbidden_names, prefix=key_prefixes, value=st.text(max_size=20))
def test_forbidden_keys_never_reach_labels_or_log_attrs(name, prefix, value):
    attrs = {prefix + name: value, "http.route": "/api/v1/guilds/{guild_id}", "error.type": "db"}
    before = forbidden_drop_count()

    labels = allowed_labels("kaiku_http_errors_total", attrs)
    log_attrs = filter_log_attrs(attrs)

    assert labels == {"http.route": "/api/v1/guilds/{guild_id}", "error.type": "db"}
    assert log_attrs == {"http.route": "/api/v1/guilds/{guild_id}", "error.type": "db"}
    assert forbidden_drop_count() == before + 2


# --- label allowlist and normalisation (section 4) -------------------------------------------------------


def test_allowed_labels_keeps_only_the_metrics_labels_normalised():
    attrs = {
        "http.route": "/api/v1/guilds/4711/members?expand=roles",
        "http.request.method": "post",
        "http.response.status_code": 503.0,
        "error.type": "DB",
        "ws.event_type": "message.create",
        "service.name": "kaiku-server",
    }

    assert allowed_labels("kaiku_http_requests_total", attrs) == {
        "http.route": "/api/v1/guilds/{id}/members",
        "http.request.method": "POST",
        "http.response.status_code": "503",
    }
    assert allowed_labels("kaiku_http_errors_total", attrs) == {
        "http.route": "/api/v1/guilds/{id}/members",
        "http.response.status_code": "503",
        "error.type": "db",
    }
    assert allowed_labels("kaiku_db_pool_connections_active", attrs) == {}


@pytest.mark.parametrize(
    ("metric", "outcome", "expected"),
    [
        ("kaiku_voice_joins_total", "success", {"outcome": "success"}),
        ("kaiku_voice_joins_total", "ERROR", {"outcome": "error"}),
        ("kaiku_voice_joins_total", "crash", {}),
        ("kaiku_voice_sessions_ended_total", "crash", {"outcome": "crash"}),
        ("kaiku_auth_login_attempts_total", "failure", {"outcome": "failure"}),
        ("kaiku_auth_login_attempts_total", "error", {}),
    ],
)
def test_outcome_is_kept_only_when_the_metric_allows_that_value(metric, outcome, expected):
    assert allowed_labels(metric, {"outcome": outcome}) == expected


def test_label_values_are_strings_capped_and_scrubbed():
    labels = allowed_labels(
        "kaiku_client_tauri_command_errors_total", {"command": "send to bob@example.com " + "x" * 500}
    )
    assert labels["command"].startswith("send to [email] xxx")
    assert len(labels["command"]) == 128


def test_values_that_cannot_be_labels_are_dropped():
    assert allowed_labels("kaiku_ws_messages_total", {"ws.event_type": ["a", "b"]}) == {}
    assert allowed_labels("kaiku_ws_messages_total", {"ws.event_type": "  "}) == {}
    assert allowed_labels("kaiku_http_requests_total", {"http.response.status_code": "teapot"}) == {}


def test_unusual_http_methods_fold_into_other():
    assert allowed_labels("kaiku_http_requests_total", {"http.request.method": "PURGE"}) == {
        "http.request.method": "_OTHER"
    }


def test_a_point_already_in_the_senders_overflow_set_stays_the_overflow_set():
    attrs = {"otel.metric.overflow": True, "http.route": "/x"}
    assert allowed_labels("kaiku_http_requests_total", attrs) == OVERFLOW_LABELS


def test_unknown_metric_is_a_clear_error():
    with pytest.raises(ValueError, match="kaiku.http.requests"):
        allowed_labels("kaiku.http.requests", {})


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("/api/v1/guilds/{guild_id}/channels", "/api/v1/guilds/{guild_id}/channels"),
        ("/api/v1/guilds/123456/channels/42", "/api/v1/guilds/{id}/channels/{id}"),
        ("/api/v1/users/123e4567-e89b-12d3-a456-426614174000", "/api/v1/users/{id}"),
        ("/api/v1/files/9f86d081884c7d659a2feaa0", "/api/v1/files/{id}"),
        ("/api/v1/invites/aB3xY9kLmN0pQrSt7u", "/api/v1/invites/{id}"),
        ("/api/v1/users/jane.doe@example.com/settings", "/api/v1/users/{id}/settings"),
        ("/api/v1/users/jane.doe%40example.com", "/api/v1/users/{id}"),
        ("/api/v1/search?q=jane&page=2", "/api/v1/search"),
        ("/api/v1/guilds/7#members", "/api/v1/guilds/{id}"),
        ("https://kaiku.example.com/api/v1/guilds/7", "/api/v1/guilds/{id}"),
        ("/api//v1///health/", "/api/v1/health/"),
        ("/api/v1/notification-settings", "/api/v1/notification-settings"),
        ("/api/v2/users/@me", "/api/v2/users/@me"),
        ("/api/v1/deadbeef", "/api/v1/deadbeef"),
    ],
)
def test_route_normalisation(route, expected):
    assert normalize_route(route) == expected


def test_routes_are_collapsed_to_a_bounded_length():
    assert len(normalize_route("/segment" * 100)) == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (200, "200"),
        ("200", "200"),
        (200.0, "200"),
        (" 404 ", "404"),
        ("503.0", "503"),
        (99, None),
        (600, None),
        (200.5, None),
        ("2xx", None),
        ("", None),
        (None, None),
        (True, None),
        ([200], None),
    ],
)
def test_status_code_is_a_three_digit_string_or_dropped(value, expected):
    assert normalize_status_code(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auth", "auth"),
        ("RateLimit", "ratelimit"),
        ("rate_limit", "ratelimit"),
        ("validation", "validation"),
        ("TimeoutError", "other"),
        ("", "other"),
        (None, "other"),
        (500, "other"),
    ],
)
def test_error_type_is_canonical(value, expected):
    assert canonical_error_type(value) == expected


# --- logs (sections 1 and 6) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        (0, None),
        (9, None),
        (12, None),
        (13, LogLevel.WARN),
        (16, LogLevel.WARN),
        (17, LogLevel.ERROR),
        (21, LogLevel.ERROR),
        (24, LogLevel.ERROR),
    ],
)
def test_only_warn_and_error_records_are_kept_and_fatal_counts_as_error(severity, level):
    assert level_for_severity(severity) == level


@pytest.mark.parametrize(
    ("value", "expected"),
    [("voice", "voice"), ("WS", "ws"), ("telemetry", "telemetry"), ("billing", "other"), (None, "other")],
)
def test_log_domain_is_canonical(value, expected):
    assert canonical_log_domain(value) == expected


def test_log_attrs_keep_the_allowlist_normalised_and_scrubbed():
    attrs = {
        "exception.type": "psycopg.OperationalError",
        "exception.message": "connection to 10.0.0.5 failed for jane@example.com",
        "exception.stacktrace": "Traceback ...",
        "http.route": "/api/v1/guilds/42",
        "http.response.status_code": 500,
        "error.type": "Database",
        "code.function": "guilds.views.detail",
        "kaiku.domain": "db",
    }
    assert filter_log_attrs(attrs) == {
        "exception.type": "psycopg.OperationalError",
        "exception.message": "connection to [ip] failed for [email]",
        "http.route": "/api/v1/guilds/{id}",
        "http.response.status_code": "500",
        "error.type": "other",
        "code.function": "guilds.views.detail",
    }


# --- thresholds and the Voice Health Score (section 10) --------------------------------------------------


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
