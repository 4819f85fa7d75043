"""System checks of the Command Center configuration (run at start-up and by `manage.py check`).

Thresholds whose warn value is not on the green side of crit, unparsable COMMAND_CENTER_* values, bad
link URLs/templates and unknown COMMAND_CENTER_* variables (typos) are reported with readable messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from command_center.selectors.links import LINK_SETTINGS, REQUIRED_PLACEHOLDERS
from command_center.thresholds import DEFAULT_THRESHOLDS, THRESHOLD_ENV_PREFIX, load_thresholds, threshold_errors
from telemetry.contract import FeatureFlag

CHECK_ID = "command_center"
POSITIVE_INT_SETTINGS = ("COMMAND_CENTER_TRACE_SLOW_MS", "COMMAND_CENTER_DB_SLOW_MS")
OTHER_KNOWN_SETTINGS = ("COMMAND_CENTER_OTEL_COLLECTOR_ENDPOINT", "COMMAND_CENTER_PROBE_TIMEOUT_SECONDS",
                        "COMMAND_CENTER_MAIN_SERVICE")


def known_variables() -> frozenset[str]:
    names = {name for t in DEFAULT_THRESHOLDS.values() for name in (t.env_warn, t.env_crit)}
    names |= {flag.env_var for flag in FeatureFlag}
    names |= {setting for keys in LINK_SETTINGS.values() for setting in keys.values()}
    return frozenset(names | set(POSITIVE_INT_SETTINGS) | set(OTHER_KNOWN_SETTINGS))


def threshold_messages(env: Mapping[str, str]) -> list[checks.CheckMessage]:
    try:
        thresholds = load_thresholds(env)
    except ValueError as error:
        return [
            checks.Error(
                f"Invalid Command Center threshold: {error}",
                hint="Thresholds are plain numbers >= 0, e.g. COMMAND_CENTER_API_LATENCY_P95_WARN_MS=200.",
                id=f"{CHECK_ID}.E001",
            )
        ]
    return [
        checks.Error(
            f"Command Center threshold misconfigured: {message}",
            hint="warn marks where yellow starts and must lie on the green side of crit.",
            id=f"{CHECK_ID}.E002",
        )
        for message in threshold_errors(thresholds)
    ]


def setting_messages() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for name in POSITIVE_INT_SETTINGS:
        value = getattr(settings, name, None)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            messages.append(
                checks.Error(
                    f"{name} must be a whole number of milliseconds > 0, got {value!r}", id=f"{CHECK_ID}.E003"
                )
            )
    timeout = getattr(settings, "COMMAND_CENTER_PROBE_TIMEOUT_SECONDS", 2.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 10:
        messages.append(
            checks.Error(
                f"COMMAND_CENTER_PROBE_TIMEOUT_SECONDS must be a number in (0, 10], got {timeout!r}",
                id=f"{CHECK_ID}.E004",
            )
        )
    for keys in LINK_SETTINGS.values():
        for name in keys.values():
            value = getattr(settings, name, "") or ""
            if not value:
                continue
            if (
                not isinstance(value, str)
                or urlsplit(value).scheme not in ("http", "https")
                or not urlsplit(value).netloc
            ):
                messages.append(
                    checks.Error(
                        f"{name} must be an http(s) URL, got {str(value)[:80]!r}", id=f"{CHECK_ID}.E005"
                    )
                )
                continue
            missing = [p for p in REQUIRED_PLACEHOLDERS.get(name, ()) if p not in value]
            if missing:
                messages.append(
                    checks.Error(
                        f"{name} lacks the placeholder(s) {', '.join(missing)}",
                        hint="The browser replaces them with the trace id / time range.",
                        id=f"{CHECK_ID}.E006",
                    )
                )
    return messages


def unknown_variable_messages(env: Mapping[str, str]) -> list[checks.CheckMessage]:
    known = known_variables()
    return [
        checks.Warning(
            f"Unknown setting {name} (a typo?); it has no effect",
            hint="See .env.example for the COMMAND_CENTER_* variables.",
            id=f"{CHECK_ID}.W001",
        )
        for name in sorted(env)
        if name.startswith(THRESHOLD_ENV_PREFIX) and name not in known
    ]


@checks.register()
def command_center_configuration(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    variables = settings.COMMAND_CENTER_THRESHOLD_ENV
    return [*threshold_messages(variables), *setting_messages(), *unknown_variable_messages(variables)]
