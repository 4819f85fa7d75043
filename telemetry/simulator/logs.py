"""WARN/ERROR log records of the simulated server, across the contract's log domains.

About one baseline record in eight carries personal data (an e-mail, an IP address, a bearer
token) in its body, as real server logs do, so the receiver's scrubber has something to do.
"""

import random
import string
from dataclasses import dataclass
from itertools import accumulate

from opentelemetry.proto.logs.v1 import logs_pb2

from telemetry.contract import Attr, Label
from telemetry.simulator.instruments import AttributeSet, key_values

WARN = logs_pb2.SEVERITY_NUMBER_WARN
ERROR = logs_pb2.SEVERITY_NUMBER_ERROR
_SEVERITY_TEXT = {WARN: "WARN", ERROR: "ERROR"}
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"
_FIRST_NAMES = ("aino", "eero", "helmi", "juho", "lumi", "onni", "venla", "leo")


@dataclass(frozen=True)
class LogTemplate:
    domain: str
    event: str
    severity: int
    body: str
    weight: float
    error_type: str | None = None
    exception_type: str | None = None
    code_function: str | None = None


BASELINE_TEMPLATES: tuple[LogTemplate, ...] = (
    LogTemplate("auth", "auth.login_failed", WARN, "login failed for {email} from {ip}: invalid credentials",
                2, "auth", code_function="vc_server::auth::login"),
    LogTemplate("auth", "auth.token_refresh_rejected", WARN, "refresh token expired for session {n}", 3,
                "auth", code_function="vc_server::auth::refresh"),
    LogTemplate("auth", "auth.token_malformed", ERROR,
                "rejected request with malformed header Authorization: Bearer {token}", 0.5, "auth",
                "vc_server::auth::TokenError", "vc_server::auth::middleware"),
    LogTemplate("auth", "auth.rate_limited", WARN, "too many login attempts from {ip}, backing off {n} s", 1,
                "ratelimit", code_function="vc_server::auth::login"),
    LogTemplate("chat", "chat.message_rejected", WARN, "message rejected: payload of {n} bytes exceeds limit",
                3, "validation", code_function="vc_server::chat::messages::create"),
    LogTemplate("chat", "chat.attachment_upload_failed", ERROR,
                "attachment upload to object storage failed after {ms} ms", 1, "internal",
                "aws_sdk_s3::Error", "vc_server::chat::attachments::upload"),
    LogTemplate("voice", "voice.ice_failed", WARN,
                "ICE negotiation failed for voice session {n} after {ms} ms", 2, "voice",
                code_function="vc_sfu::signalling::negotiate"),
    LogTemplate("voice", "voice.session_crash", ERROR, "SFU worker panicked, voice session {n} dropped", 0.5,
                "voice", "vc_sfu::WorkerPanic", "vc_sfu::worker::run"),
    LogTemplate("ws", "ws.disconnect_abnormal", WARN, "websocket closed abnormally (1006) after {n} s", 4,
                "ws", code_function="vc_server::gateway::session"),
    LogTemplate("ws", "ws.slow_consumer", WARN, "dropping events for slow consumer, backlog {n}", 1, "ws",
                code_function="vc_server::gateway::fanout"),
    LogTemplate("db", "db.slow_query", WARN, "slow query on messages took {ms} ms", 3, "db",
                code_function="vc_server::db::messages::list"),
    LogTemplate("db", "db.connection_reset", ERROR, "connection to postgres at {ip}:5432 reset by peer", 0.3,
                "db", "sqlx::Error", "vc_server::db::pool"),
    LogTemplate("admin", "admin.permission_denied", WARN, "admin action denied for {email}", 0.5, "auth",
                code_function="vc_server::admin::guard"),
    LogTemplate("admin", "admin.audit_write_failed", ERROR, "audit log write timed out after {ms} ms", 0.2,
                "db", "sqlx::Error", "vc_server::admin::audit"),
    LogTemplate("crypto", "crypto.prekeys_exhausted", WARN, "one-time prekeys exhausted for device {n}", 1,
                "validation", code_function="vc_server::crypto::prekeys"),
    LogTemplate("crypto", "crypto.decrypt_failed", ERROR, "failed to decrypt sealed envelope: MAC mismatch",
                0.3, "internal", "vc_crypto::Error", "vc_server::crypto::envelope"),
)

INCIDENT_TEMPLATES: tuple[LogTemplate, ...] = (
    LogTemplate("db", "db.pool_exhausted", ERROR,
                "connection pool exhausted ({n} waiting), request gave up after {ms} ms", 6, "db",
                "sqlx::Error::PoolTimedOut", "vc_server::db::pool::acquire"),
    LogTemplate("chat", "http.request_failed", ERROR, "request failed with 500 Internal Server Error", 3,
                "internal", "vc_server::ApiError", "vc_server::http::respond"),
    LogTemplate("voice", "voice.packet_loss_high", ERROR, "packet loss {pct}% on voice session {n}", 1,
                "voice", code_function="vc_sfu::stats::report"),
)


class TemplatePicker:
    def __init__(self, templates: tuple[LogTemplate, ...]) -> None:
        self.templates = templates
        self._cumulative_weights = list(accumulate(template.weight for template in templates))

    def pick(self, rng: random.Random) -> LogTemplate:
        return rng.choices(self.templates, cum_weights=self._cumulative_weights)[0]


def log_record(
    rng: random.Random,
    template: LogTemplate,
    time_ns: int,
    trace: tuple[bytes, bytes] | None = None,
    route: str | None = None,
) -> logs_pb2.LogRecord:
    """One record as the server's OTel log bridge would emit it (trace = (trace_id, span_id))."""
    body = template.body.format(**_placeholder_values(rng))
    attributes: AttributeSet = ((Attr.KAIKU_DOMAIN, template.domain), (Attr.EVENT_NAME, template.event))
    if template.error_type:
        attributes += ((Label.ERROR_TYPE, template.error_type),)
    if template.exception_type:
        attributes += ((Attr.EXCEPTION_TYPE, template.exception_type),)
    if template.code_function:
        attributes += ((Attr.CODE_FUNCTION, template.code_function),)
    if route:
        attributes += ((Label.HTTP_ROUTE, route),)
    record = logs_pb2.LogRecord(
        time_unix_nano=time_ns,
        observed_time_unix_nano=time_ns,
        severity_number=template.severity,
        severity_text=_SEVERITY_TEXT[template.severity],
        attributes=key_values(attributes),
    )
    if template.exception_type:
        record.attributes.add(key=Attr.EXCEPTION_MESSAGE).value.string_value = body
    record.body.string_value = body
    if trace:
        record.trace_id, record.span_id = trace
    return record


def _placeholder_values(rng: random.Random) -> dict[str, object]:
    ipv4, ipv6 = f"203.0.113.{rng.randrange(1, 255)}", f"2001:db8::{rng.randrange(1, 0xFFFF):x}"
    return {
        "email": f"{rng.choice(_FIRST_NAMES)}.{rng.randrange(1000)}@example.fi",
        "ip": ipv4 if rng.random() < 0.5 else ipv6,
        "token": "".join(rng.choices(_TOKEN_ALPHABET, k=43)),
        "n": rng.randrange(1, 5000),
        "ms": rng.randrange(120, 30_000),
        "pct": round(rng.uniform(5, 15), 1),
    }
