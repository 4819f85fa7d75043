"""External tool links (Grafana, Tempo, Loki, Prometheus) from settings; empty strings when unset.

Settings (all optional): COMMAND_CENTER_GRAFANA_URL, COMMAND_CENTER_GRAFANA_DASHBOARD_URL,
COMMAND_CENTER_TEMPO_URL, COMMAND_CENTER_TEMPO_TRACE_URL, COMMAND_CENTER_LOKI_URL,
COMMAND_CENTER_LOKI_QUERY_URL, COMMAND_CENTER_PROMETHEUS_URL, COMMAND_CENTER_PROMETHEUS_QUERY_URL.
Templates may contain `{trace_id}`, `{from}` and `{to}`, which the browser fills in.
"""

from __future__ import annotations

from django.conf import settings

# tool → {response key: setting name}
LINK_SETTINGS: dict[str, dict[str, str]] = {
    "grafana": {
        "base_url": "COMMAND_CENTER_GRAFANA_URL",
        "dashboard_url_template": "COMMAND_CENTER_GRAFANA_DASHBOARD_URL",
    },
    "tempo": {"base_url": "COMMAND_CENTER_TEMPO_URL", "trace_url_template": "COMMAND_CENTER_TEMPO_TRACE_URL"},
    "loki": {"base_url": "COMMAND_CENTER_LOKI_URL", "logs_url_template": "COMMAND_CENTER_LOKI_QUERY_URL"},
    "prometheus": {
        "base_url": "COMMAND_CENTER_PROMETHEUS_URL",
        "graph_url_template": "COMMAND_CENTER_PROMETHEUS_QUERY_URL",
    },
}
# Placeholders a template must carry to be useful (checked by command_center.checks).
REQUIRED_PLACEHOLDERS = {
    "COMMAND_CENTER_TEMPO_TRACE_URL": ("{trace_id}",),
    "COMMAND_CENTER_LOKI_QUERY_URL": ("{from}", "{to}"),
    "COMMAND_CENTER_PROMETHEUS_QUERY_URL": ("{from}", "{to}"),
    "COMMAND_CENTER_GRAFANA_DASHBOARD_URL": ("{from}", "{to}"),
}


def links() -> dict[str, dict[str, str]]:
    return {
        tool: {key: str(getattr(settings, setting, "") or "") for key, setting in keys.items()}
        for tool, keys in LINK_SETTINGS.items()
    }
