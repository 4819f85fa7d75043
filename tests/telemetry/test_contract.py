"""The observability contract as code: catalogue, allowlist, forbidden fields, routes, logs, thresholds."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry.contract import (
    CATALOGUE,
    FORBIDDEN_KEY_PREFIXES,
    FORBIDDEN_KEYS,
    LOG_ATTR_ALLOWLIST,
    OVERFLOW_LABELS,
    FeatureFlag,
    GoldenSignal,
    Kind,
    Label,
    LogLevel,
    Metric,
    allowed_labels,
    canonical_error_type,
    canonical_log_domain,
    filter_log_attrs,
    forbidden_drop_count,
    is_forbidden,
    level_for_severity,
    normalize_route,
    normalize_status_code,
)

# --- catalogue (section 3) -------------------------------------------------------------------------------


def test_catalogue_has_every_metric_once_keyed_by_its_name():
    assert set(CATALOGUE) == {metric.value for metric in Metric}
    assert len(CATALOGUE) == 32
    assert all(spec.name == name for name, spec in CATALOGUE.items())


def test_catalogue_rows_match_the_contract_table():
    http = CATALOGUE["kaiku_http_request_duration_seconds"]
    assert (http.kind, http.signal) == (Kind.HISTOGRAM, GoldenSignal.LATENCY)
    assert http.labels == (Label.HTTP_ROUTE, Label.HTTP_METHOD, Label.HTTP_STATUS_CODE)
    assert CATALOGUE["kaiku_otel_dropped_spans_total"].signal == GoldenSignal.SATURATION
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
