"""The Kaiku observability contract (docs/observability-contract.md) as code.

Every metric, label and attribute name is spelled here and only here. Section numbers in the comments
refer to that document.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from urllib.parse import unquote

from django.conf import settings

RETENTION_DAYS = 30
CARDINALITY_BUDGET = 100
SCOPE_CLUSTER = "cluster"
MAX_FUTURE_SKEW = timedelta(minutes=10)

LABEL_VALUE_MAX_LENGTH = 128
ROUTE_MAX_LENGTH = 200
LOG_MESSAGE_MAX_LENGTH = 2000
LOG_EVENT_MAX_LENGTH = 64
LOG_ATTR_MAX_LENGTH = 256


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class GoldenSignal(StrEnum):
    LATENCY = "latency"
    TRAFFIC = "traffic"
    ERRORS = "errors"
    SATURATION = "saturation"


class FeatureFlag(StrEnum):
    CLIENT_TELEMETRY = "client_telemetry"
    DEPLOY_MARKERS = "deploy_markers"
    REDIS_STATS = "redis_stats"

    @property
    def env_var(self) -> str:
        return f"COMMAND_CENTER_FEATURE_{self.name}"

    @property
    def enabled(self) -> bool:
        """Whether the setting `env_var` (read from the variable of that name) turns the flag on."""
        return bool(getattr(settings, self.env_var, False))


class Metric(StrEnum):
    HTTP_REQUESTS_TOTAL = "kaiku_http_requests_total"
    HTTP_REQUEST_DURATION_SECONDS = "kaiku_http_request_duration_seconds"
    HTTP_ERRORS_TOTAL = "kaiku_http_errors_total"
    DB_QUERY_DURATION_SECONDS = "kaiku_db_query_duration_seconds"
    DB_POOL_CONNECTIONS_ACTIVE = "kaiku_db_pool_connections_active"
    DB_POOL_CONNECTIONS_IDLE = "kaiku_db_pool_connections_idle"
    DB_POOL_CONNECTIONS_MAX = "kaiku_db_pool_connections_max"
    WS_CONNECTIONS_ACTIVE = "kaiku_ws_connections_active"
    WS_MESSAGES_TOTAL = "kaiku_ws_messages_total"
    WS_RECONNECTS_TOTAL = "kaiku_ws_reconnects_total"
    VOICE_SESSIONS_ACTIVE = "kaiku_voice_sessions_active"
    VOICE_ROOMS_ACTIVE = "kaiku_voice_rooms_active"
    VOICE_ROOM_PARTICIPANTS = "kaiku_voice_room_participants"
    VOICE_JOINS_TOTAL = "kaiku_voice_joins_total"
    VOICE_SESSIONS_ENDED_TOTAL = "kaiku_voice_sessions_ended_total"
    VOICE_SESSION_DURATION_SECONDS = "kaiku_voice_session_duration_seconds"
    VOICE_RTP_PACKETS_FORWARDED_TOTAL = "kaiku_voice_rtp_packets_forwarded_total"
    AUTH_LOGIN_ATTEMPTS_TOTAL = "kaiku_auth_login_attempts_total"
    AUTH_TOKEN_REFRESH_TOTAL = "kaiku_auth_token_refresh_total"
    OTEL_EXPORTS_TOTAL = "kaiku_otel_exports_total"
    OTEL_EXPORT_FAILURES_TOTAL = "kaiku_otel_export_failures_total"
    OTEL_DROPPED_SPANS_TOTAL = "kaiku_otel_dropped_spans_total"
    OTEL_QUEUE_SIZE = "kaiku_otel_queue_size"
    OTEL_QUEUE_CAPACITY = "kaiku_otel_queue_capacity"
    PROCESS_MEMORY_BYTES = "kaiku_process_memory_bytes"
    PROCESS_MEMORY_LIMIT_BYTES = "kaiku_process_memory_limit_bytes"
    USERS_ACTIVE = "kaiku_users_active"
    GUILDS_TOTAL = "kaiku_guilds_total"
    CLIENT_TAURI_COMMAND_DURATION_SECONDS = "kaiku_client_tauri_command_duration_seconds"
    CLIENT_TAURI_COMMAND_ERRORS_TOTAL = "kaiku_client_tauri_command_errors_total"
    CLIENT_VOICE_WEBRTC_CONNECT_DURATION_SECONDS = "kaiku_client_voice_webrtc_connect_duration_seconds"
    CLIENT_VOICE_WEBRTC_FAILURES_TOTAL = "kaiku_client_voice_webrtc_failures_total"


class Label(StrEnum):
    HTTP_ROUTE = "http.route"
    HTTP_METHOD = "http.request.method"
    HTTP_STATUS_CODE = "http.response.status_code"
    ERROR_TYPE = "error.type"
    DB_OPERATION = "db.operation"
    WS_EVENT_TYPE = "ws.event_type"
    OUTCOME = "outcome"
    OTEL_SIGNAL = "otel.signal"
    COMMAND = "command"
    FAILURE_REASON = "failure.reason"
    OVERFLOW = "otel.metric.overflow"


class Attr(StrEnum):
    """Resource, span and log attribute keys that kaiku_ops reads."""

    SERVICE_NAME = "service.name"
    SERVICE_VERSION = "service.version"
    DEPLOYMENT_ENVIRONMENT_NAME = "deployment.environment.name"
    DEPLOYMENT_ENVIRONMENT = "deployment.environment"
    SERVICE_INSTANCE_ID = "service.instance.id"
    KAIKU_DOMAIN = "kaiku.domain"
    DB_SYSTEM = "db.system"
    EVENT_NAME = "event.name"
    EXCEPTION_TYPE = "exception.type"
    EXCEPTION_MESSAGE = "exception.message"
    CODE_FUNCTION = "code.function"


class Event(StrEnum):
    """Names of the log/audit events kaiku_ops records about itself."""

    CARDINALITY_OVERFLOW = "telemetry.cardinality_overflow"
    DEPLOY_DETECTED = "admin.deploy.detected"
    OBSERVABILITY_VIEW = "admin.observability.view"


OVERFLOW_LABELS = {Label.OVERFLOW.value: "true"}

OUTCOMES_SUCCESS_ERROR = ("success", "error")
OUTCOMES_NORMAL_CRASH = ("normal", "crash")
OUTCOMES_SUCCESS_FAILURE = ("success", "failure")


@dataclass(frozen=True)
class MetricSpec:
    name: Metric
    kind: Kind
    signal: GoldenSignal
    labels: tuple[Label, ...]
    flag: FeatureFlag | None
    description: str
    outcomes: tuple[str, ...] = ()  # the values the `outcome` label may take, when the metric has it


_HTTP = (Label.HTTP_ROUTE, Label.HTTP_METHOD, Label.HTTP_STATUS_CODE)
_C, _G, _H = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM
_LAT, _TRA, _ERR, _SAT = GoldenSignal.LATENCY, GoldenSignal.TRAFFIC, GoldenSignal.ERRORS, GoldenSignal.SATURATION
_CLIENT = FeatureFlag.CLIENT_TELEMETRY

_SPECS = (
    MetricSpec(Metric.HTTP_REQUESTS_TOTAL, _C, _TRA, _HTTP, None, "HTTP requests served"),
    MetricSpec(Metric.HTTP_REQUEST_DURATION_SECONDS, _H, _LAT, _HTTP, None, "HTTP request duration"),
    MetricSpec(
        Metric.HTTP_ERRORS_TOTAL,
        _C,
        _ERR,
        (Label.HTTP_ROUTE, Label.HTTP_STATUS_CODE, Label.ERROR_TYPE),
        None,
        "HTTP requests that failed",
    ),
    MetricSpec(
        Metric.DB_QUERY_DURATION_SECONDS, _H, _LAT, (Label.DB_OPERATION,), None, "Database query duration"
    ),
    MetricSpec(Metric.DB_POOL_CONNECTIONS_ACTIVE, _G, _SAT, (), None, "Database pool connections in use"),
    MetricSpec(Metric.DB_POOL_CONNECTIONS_IDLE, _G, _SAT, (), None, "Database pool connections idle"),
    MetricSpec(Metric.DB_POOL_CONNECTIONS_MAX, _G, _SAT, (), None, "Database pool size limit"),
    MetricSpec(Metric.WS_CONNECTIONS_ACTIVE, _G, _TRA, (), None, "Open WebSocket connections"),
    MetricSpec(Metric.WS_MESSAGES_TOTAL, _C, _TRA, (Label.WS_EVENT_TYPE,), None, "WebSocket messages sent"),
    MetricSpec(Metric.WS_RECONNECTS_TOTAL, _C, _ERR, (), None, "WebSocket reconnections"),
    MetricSpec(Metric.VOICE_SESSIONS_ACTIVE, _G, _TRA, (), None, "Active voice sessions"),
    MetricSpec(Metric.VOICE_ROOMS_ACTIVE, _G, _TRA, (), None, "Active voice rooms"),
    MetricSpec(Metric.VOICE_ROOM_PARTICIPANTS, _H, _TRA, (), None, "Participants per voice room"),
    MetricSpec(
        Metric.VOICE_JOINS_TOTAL,
        _C,
        _ERR,
        (Label.OUTCOME,),
        None,
        "Voice join attempts",
        OUTCOMES_SUCCESS_ERROR,
    ),
    MetricSpec(
        Metric.VOICE_SESSIONS_ENDED_TOTAL,
        _C,
        _ERR,
        (Label.OUTCOME,),
        None,
        "Voice sessions ended",
        OUTCOMES_NORMAL_CRASH,
    ),
    MetricSpec(Metric.VOICE_SESSION_DURATION_SECONDS, _H, _LAT, (), None, "Voice session duration"),
    MetricSpec(
        Metric.VOICE_RTP_PACKETS_FORWARDED_TOTAL, _C, _TRA, (), None, "RTP packets forwarded by the SFU"
    ),
    MetricSpec(
        Metric.AUTH_LOGIN_ATTEMPTS_TOTAL,
        _C,
        _ERR,
        (Label.OUTCOME,),
        None,
        "Login attempts",
        OUTCOMES_SUCCESS_FAILURE,
    ),
    MetricSpec(
        Metric.AUTH_TOKEN_REFRESH_TOTAL,
        _C,
        _ERR,
        (Label.OUTCOME,),
        None,
        "Token refreshes",
        OUTCOMES_SUCCESS_FAILURE,
    ),
    MetricSpec(Metric.OTEL_EXPORTS_TOTAL, _C, _TRA, (Label.OTEL_SIGNAL,), None, "OTel export batches sent"),
    MetricSpec(
        Metric.OTEL_EXPORT_FAILURES_TOTAL, _C, _ERR, (Label.OTEL_SIGNAL,), None, "OTel export failures"
    ),
    MetricSpec(Metric.OTEL_DROPPED_SPANS_TOTAL, _C, _SAT, (), None, "Spans dropped by the OTel SDK"),
    MetricSpec(Metric.OTEL_QUEUE_SIZE, _G, _SAT, (), None, "OTel export queue length"),
    MetricSpec(Metric.OTEL_QUEUE_CAPACITY, _G, _SAT, (), None, "OTel export queue capacity"),
    MetricSpec(Metric.PROCESS_MEMORY_BYTES, _G, _SAT, (), None, "Server resident memory (RSS)"),
    MetricSpec(Metric.PROCESS_MEMORY_LIMIT_BYTES, _G, _SAT, (), None, "Server memory limit"),
    MetricSpec(Metric.USERS_ACTIVE, _G, _TRA, (), None, "Active users"),
    MetricSpec(Metric.GUILDS_TOTAL, _G, _TRA, (), None, "Guilds on the server"),
    MetricSpec(
        Metric.CLIENT_TAURI_COMMAND_DURATION_SECONDS,
        _H,
        _LAT,
        (Label.COMMAND,),
        _CLIENT,
        "Desktop client command duration",
    ),
    MetricSpec(
        Metric.CLIENT_TAURI_COMMAND_ERRORS_TOTAL,
        _C,
        _ERR,
        (Label.COMMAND,),
        _CLIENT,
        "Desktop client command errors",
    ),
    MetricSpec(
        Metric.CLIENT_VOICE_WEBRTC_CONNECT_DURATION_SECONDS,
        _H,
        _LAT,
        (),
        _CLIENT,
        "Client WebRTC connect time",
    ),
    MetricSpec(
        Metric.CLIENT_VOICE_WEBRTC_FAILURES_TOTAL,
        _C,
        _ERR,
        (Label.FAILURE_REASON,),
        _CLIENT,
        "Client WebRTC connection failures",
    ),
)

CATALOGUE: Mapping[str, MetricSpec] = {spec.name.value: spec for spec in _SPECS}


# --- section 7: forbidden fields -------------------------------------------------------------------------

FORBIDDEN_KEYS = (
    "user.id",
    "user.name",
    "user.email",
    "user.full_name",
    "client.address",
    "client.port",
    "source.address",
    "net.peer.ip",
    "net.sock.peer.addr",
    "http.client_ip",
    "url.full",
    "url.query",
    "http.url",
    "http.target",
    "authorization",
    "cookie",
    "set-cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "api_key",
    "session.id",
    "message.content",
    "db.statement",
    "db.query.text",
    "exception.stacktrace",
)
FORBIDDEN_KEY_PREFIXES = ("enduser", "http.request.header", "http.response.header", "chat.message")


def _separators_as_dots(key: str) -> str:
    # `user_email`, `X-Api-Key` and `user.email` are the same field to a human, so they are to us.
    return key.strip().lower().replace("_", ".").replace("-", ".")


def _alternatives(names: tuple[str, ...]) -> str:
    return "|".join(re.escape(_separators_as_dots(name)) for name in names)


_FORBIDDEN_KEY = re.compile(
    rf"(?:^|\.)(?:{_alternatives(FORBIDDEN_KEYS)})$|(?:^|\.)(?:{_alternatives(FORBIDDEN_KEY_PREFIXES)})(?:\.|$)"
)


@lru_cache(maxsize=4096)
def is_forbidden(key: str) -> bool:
    """Whether a label/attribute key must never be stored, whatever its case or prefix."""
    return _FORBIDDEN_KEY.search(_separators_as_dots(str(key))) is not None


class _DropCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._count += n

    @property
    def value(self) -> int:
        return self._count


_forbidden_drops = _DropCounter()


def forbidden_drop_count() -> int:
    """Forbidden keys dropped by this process so far (monotonic; a self-metric, never the values)."""
    return _forbidden_drops.value


# --- section 8: scrubbing --------------------------------------------------------------------------------

_TOKEN_CHAR = r"[A-Za-z0-9\-._~+/]"
_AUTH_HEADER = re.compile(
    r"\b(?P<scheme>(?i:bearer|basic))[ \t]+"
    # A credential, not prose ("Basic plan", "bearer of news"): 8+ chars with a digit, an inner symbol or
    # a lower-to-upper case change somewhere.
    rf"(?={_TOKEN_CHAR}*?(?:[0-9]|[\-._~+/][A-Za-z0-9]|[a-z][A-Z])){_TOKEN_CHAR}{{8,}}=*"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")

# `api_key`, `X-Api-Key`, `client_secret`, `access_token` count; `monkey=` or `hotkey=` do not.
_SECRET_NAME = r"(?:[A-Za-z0-9]+[_.-])*(?:password|passwd|secret|token|api_?key|key)"
_KEY_VALUE = re.compile(
    r"(?<![A-Za-z0-9_.\-])"
    rf"(?:(?P<quote>\\?[\"']){_SECRET_NAME}(?P=quote)\s*[:=]\s*|{_SECRET_NAME}[ \t]*=(?!=)[ \t]*)"
    r"(?P<value>\\\"(?:[^\\]|\\[^\"])*?\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s&,;\"'<>(){}\[\]]+)",
    re.IGNORECASE,
)

_EMAIL_LOCAL_CHAR = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]"
_EMAIL = re.compile(
    # the lookbehind starts matches only at the beginning of a run, keeping long inputs linear
    rf"(?<!{_EMAIL_LOCAL_CHAR}){_EMAIL_LOCAL_CHAR}+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_HEXTET = r"[0-9A-Fa-f]{1,4}"
_V6_FORMS = (
    rf"(?:{_HEXTET}:){{6}}{_V4}",
    rf"(?:{_HEXTET}:){{1,5}}:{_V4}",
    rf"::(?:[fF]{{4}}(?::0{{1,4}})?:)?{_V4}",
    rf"(?:{_HEXTET}:){{7}}{_HEXTET}",
    rf"(?:{_HEXTET}:){{1,6}}:{_HEXTET}",
    rf"(?:{_HEXTET}:){{1,5}}(?::{_HEXTET}){{1,2}}",
    rf"(?:{_HEXTET}:){{1,4}}(?::{_HEXTET}){{1,3}}",
    rf"(?:{_HEXTET}:){{1,3}}(?::{_HEXTET}){{1,4}}",
    rf"(?:{_HEXTET}:){{1,2}}(?::{_HEXTET}){{1,5}}",
    rf"{_HEXTET}:(?::{_HEXTET}){{1,6}}",
    rf"::(?:{_HEXTET}:){{0,6}}{_HEXTET}",
    rf"(?:{_HEXTET}:){{1,7}}:",
)
# Clock times (10:04:05) never match: without `::` an IPv6 address has exactly eight groups. A colon after the
# address ends it unless another group follows ("from 2001:db8::ff: invalid credentials").
_IPV6 = re.compile(rf"(?<![\w:.])(?:{'|'.join(_V6_FORMS)})(?!\w|:[0-9A-Fa-f:]|\.\d)")
_IPV4 = re.compile(rf"(?<![\w.]){_V4}(?!\.?\d)")
_UUID = re.compile(r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Fa-f])")
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_=-])")
_QUERY_STRING = re.compile(r"(?<=[^\s?])\?(?=[A-Za-z0-9_%.~+\[-])[^\s\"'<>]+")


def _redacted_value(match: re.Match[str]) -> str:
    value = match["value"]
    key_part = match.group(0)[: match.start("value") - match.start()]
    if value.startswith('\\"'):
        return f'{key_part}\\"[redacted]\\"'
    if value[0] in "\"'":
        return f"{key_part}{value[0]}[redacted]{value[0]}"
    return f"{key_part}[redacted]"


def _secret_if_random(match: re.Match[str]) -> str:
    # Long identifiers in prose (metric_names_like_this, /some/long/path) are single-case or digit-free;
    # random base64 secrets of 32+ characters practically always mix upper, lower and digits.
    run = match.group(0)
    is_random = (
        any(c.isdigit() for c in run) and any(c.islower() for c in run) and any(c.isupper() for c in run)
    )
    return "[secret]" if is_random else run


def _auth_header(match: re.Match[str]) -> str:
    return f"{match['scheme']} [redacted]"


@dataclass(frozen=True)
class _ScrubRule:
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]
    # A cheap pre-check: False when the pattern cannot match, so most messages skip most regexes.
    may_match: Callable[[str], bool]


def _may_contain_any(text: str, lower_case_words: tuple[str, ...]) -> bool:
    """False only when no word occurs in `text` in any letter case. Decided on the lower-cased text for
    ASCII texts only: a case-insensitive regex also matches some non-ASCII letters (the Kelvin sign as
    `k`, a long s as `s`, a dotless i as `i`) that lower() does not map to ASCII."""
    if not text.isascii():
        return True
    lowered = text.lower()
    return any(word in lowered for word in lower_case_words)


def _has_long_token(text: str) -> bool:
    # Hex and base64 runs hold no whitespace, so a 32-character run lies inside one 32+ character token.
    # The hex and the base64 rule ask in turn about the same text (unless the first changed it): remember
    # the last answer. The tuple keeps its text alive, so identity cannot be confused with a new string.
    global _last_long_token_answer
    checked, answer = _last_long_token_answer
    if text is not checked:
        answer = len(text) >= 32 and any(len(token) >= 32 for token in text.split())
        _last_long_token_answer = (text, answer)
    return answer


_last_long_token_answer: tuple[str, bool] = ("", False)


_SCRUB_RULES = (  # section 8, in its order
    _ScrubRule(
        # The shortest match: "basic", one blank, an 8-character credential.
        _AUTH_HEADER, _auth_header, lambda text: len(text) >= 14 and _may_contain_any(text, ("bearer", "basic"))
    ),
    _ScrubRule(_JWT, "[jwt]", lambda text: "eyJ" in text),
    _ScrubRule(
        _KEY_VALUE,
        _redacted_value,
        lambda text: ("=" in text or (":" in text and ('"' in text or "'" in text)))
        and _may_contain_any(text, ("key", "token", "secret", "passw")),
    ),
    _ScrubRule(_EMAIL, "[email]", lambda text: "@" in text),
    _ScrubRule(_IPV6, "[ip]", lambda text: "::" in text or text.count(":") >= 6),
    _ScrubRule(_IPV4, "[ip]", lambda text: text.count(".") >= 3),
    _ScrubRule(_UUID, "[uuid]", lambda text: text.count("-") >= 4),
    _ScrubRule(_HEX_RUN, "[secret]", _has_long_token),
    _ScrubRule(_BASE64_RUN, _secret_if_random, _has_long_token),
    _ScrubRule(_QUERY_STRING, "?[redacted]", lambda text: "?" in text),
)


_SCRUB_STEPS = tuple((rule.may_match, rule.pattern.sub, rule.replacement) for rule in _SCRUB_RULES)


# Characters that make stored text look like something else, removed before the section 8 rules (so they
# cannot split a secret out of a pattern's reach either):
# - terminal escape sequences (ANSI CSI `ESC [ ... m`, OSC `ESC ] ... BEL`, two-character `ESC x`) whole;
# - C0 controls but tab and line feed (which messages and stack traces keep), DEL and the C1 controls;
# - bidirectional controls (U+061C, U+200E/F, U+202A–E, U+2066–9): an RLO turns "exe.txt" into "txt.exe";
# - invisible characters that hide what a text contains: zero-width space, word joiner, invisible operators,
#   byte order mark. Zero-width (non-)joiners stay: Persian, Indic scripts and emoji need them.
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064"
                        "\u2066-\u2069\ufeff]")


def remove_invisible(text: str) -> str:
    """`text` without terminal escapes, control characters (but tab and line feed), bidi controls and
    invisible characters."""
    if _INVISIBLE.search(text) is None:
        return text
    if "\x1b" in text:
        text = _TERMINAL_ESCAPE.sub("", text)
    return _INVISIBLE.sub("", text)


def scrub(text: str) -> str:
    """Remove misleading invisible characters, then credentials and personal data from free text (section 8,
    rules applied in order)."""
    text = remove_invisible(text)
    for may_match, substitute, replacement in _SCRUB_STEPS:
        if may_match(text):
            text = substitute(replacement, text)
    return text


# --- section 4: label allowlist and normalisation --------------------------------------------------------

ERROR_TYPES = ("auth", "db", "ws", "voice", "ratelimit", "validation", "internal")
ERROR_TYPE_OTHER = "other"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
HTTP_METHOD_OTHER = "_OTHER"  # the OTel semantic-convention value for non-standard methods

_URL_SCHEME_AND_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*")
_REPEATED_SLASHES = re.compile(r"/{2,}")
_ID_SEGMENT = re.compile(
    r"\d+(?:\.\d+)?"
    r"|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|[0-9A-Fa-f]{17,}"
)
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9+/=_-]{17,}")


def _is_resolved_segment(segment: str) -> bool:
    if _ID_SEGMENT.fullmatch(segment) or _EMAIL.fullmatch(segment):
        return True
    if not _TOKEN_SEGMENT.fullmatch(segment):
        return False
    # `notification-settings` is a word; a generated token has digits or mixed case
    has_digit = any(c.isdigit() for c in segment)
    return has_digit or (any(c.isupper() for c in segment) and any(c.islower() for c in segment))


def _normalize_segment(segment: str) -> str:
    if segment.startswith("{") and segment.endswith("}"):
        return segment
    return "{id}" if _is_resolved_segment(unquote(segment)) else segment


def normalize_route(route: str) -> str:
    """A parameterised route template: ids, UUIDs, tokens and e-mails become `{id}`, no query string."""
    path = _URL_SCHEME_AND_HOST.sub("", route.strip())
    path = _REPEATED_SLASHES.sub("/", path.split("?", 1)[0].split("#", 1)[0])
    normalized = "/".join(_normalize_segment(segment) for segment in path.split("/"))
    return scrub(normalized)[:ROUTE_MAX_LENGTH]


_STATUS_CODE_TEXT = re.compile(r"\d{3}(?:\.0*)?")


def normalize_status_code(value: object) -> str | None:
    """An HTTP status code as its 3-digit string (200, "200", 200.0 → "200"); anything else → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not _STATUS_CODE_TEXT.fullmatch(text):
            return None
        value = int(text.split(".", 1)[0])
    if isinstance(value, int) and 100 <= value <= 599:
        return str(value)
    return None


def canonical_error_type(value: object) -> str:
    """`error.type` as one of ERROR_TYPES, else "other"."""
    if not isinstance(value, str):
        return ERROR_TYPE_OTHER
    compact = value.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    return compact if compact in ERROR_TYPES else ERROR_TYPE_OTHER


def _as_text(value: object) -> str | None:
    """Attribute values that can be a label: strings and scalars; lists, maps and bytes cannot."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip()
    return None


def _normalized_label(spec: MetricSpec, label: Label, value: object) -> str | None:
    if label is Label.HTTP_STATUS_CODE:
        return normalize_status_code(value)
    if label is Label.ERROR_TYPE:
        return canonical_error_type(value)
    text = _as_text(value)
    if not text:
        return None
    if label is Label.HTTP_ROUTE:
        return normalize_route(text) or None
    if label is Label.HTTP_METHOD:
        method = text.upper()
        return method if method in HTTP_METHODS else HTTP_METHOD_OTHER
    if label is Label.OUTCOME:
        outcome = text.lower()
        return outcome if outcome in spec.outcomes else None
    return scrub(text)[:LABEL_VALUE_MAX_LENGTH] or None


def allowed_labels(metric_name: str, attrs: Mapping[str, object]) -> dict[str, str]:
    """The stored label set of a data point: only the metric's labels, normalised; forbidden keys never pass.

    A point the sender already folded into its overflow set (`otel.metric.overflow=true`) stays that set.
    """
    spec = CATALOGUE.get(metric_name)
    if spec is None:
        raise ValueError(f"{metric_name!r} is not a metric of the observability contract")
    labels: dict[str, str] = {}
    for key, value in attrs.items():
        if is_forbidden(key):
            _forbidden_drops.add()
            continue
        if key == Label.OVERFLOW:
            if _as_text(value) == "true":
                return dict(OVERFLOW_LABELS)
            continue
        if key not in spec.labels:
            continue
        label = Label(key)
        normalized = _normalized_label(spec, label, value)
        if normalized is not None:
            labels[label.value] = normalized
    return labels


# --- sections 1 and 6: logs ------------------------------------------------------------------------------


class LogLevel(StrEnum):
    WARN = "WARN"
    ERROR = "ERROR"


SEVERITY_WARN = 13  # OTLP SeverityNumber WARN..WARN4 = 13..16, ERROR..FATAL4 = 17..24
SEVERITY_ERROR = 17

LOG_DOMAINS = ("auth", "chat", "voice", "ws", "db", "admin", "crypto", "telemetry")
LOG_DOMAIN_OTHER = "other"

LOG_ATTR_ALLOWLIST = frozenset(
    {
        Label.ERROR_TYPE.value,
        Attr.EXCEPTION_TYPE.value,
        Attr.EXCEPTION_MESSAGE.value,
        Label.HTTP_ROUTE.value,
        Label.HTTP_STATUS_CODE.value,
        Label.DB_OPERATION.value,
        Label.WS_EVENT_TYPE.value,
        Attr.CODE_FUNCTION.value,
    }
)


def level_for_severity(severity_number: int) -> LogLevel | None:
    """The stored level of an OTLP log record, or None when the record is below WARN (not kept)."""
    if severity_number >= SEVERITY_ERROR:
        return LogLevel.ERROR
    if severity_number >= SEVERITY_WARN:
        return LogLevel.WARN
    return None


def canonical_log_domain(value: object) -> str:
    """`kaiku.domain` as one of LOG_DOMAINS, else "other"."""
    domain = value.strip().lower() if isinstance(value, str) else ""
    return domain if domain in LOG_DOMAINS else LOG_DOMAIN_OTHER


def filter_log_attrs(attrs: Mapping[str, object]) -> dict[str, str]:
    """The `attrs` of a stored log event: allowlisted keys only, forbidden keys dropped, text scrubbed."""
    kept: dict[str, str] = {}
    for key, value in attrs.items():
        if is_forbidden(key):
            _forbidden_drops.add()
            continue
        if key not in LOG_ATTR_ALLOWLIST:
            continue
        if key == Label.ERROR_TYPE:
            normalized: str | None = canonical_error_type(value)
        elif key == Label.HTTP_STATUS_CODE:
            normalized = normalize_status_code(value)
        elif key == Label.HTTP_ROUTE:
            text = _as_text(value)
            normalized = normalize_route(text) if text else None
        else:
            text = _as_text(value)
            limit = LOG_MESSAGE_MAX_LENGTH if key == Attr.EXCEPTION_MESSAGE else LOG_ATTR_MAX_LENGTH
            normalized = scrub(text)[:limit] if text else None
        if normalized:
            kept[key] = normalized
    return kept
