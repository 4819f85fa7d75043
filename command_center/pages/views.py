"""The Command Center page: a shell that the browser fills from the API and the socket.

It runs no query of its own. Access follows the admin: the URL wraps the view in
`admin.site.admin_view` (anonymous or non-staff users go to the admin login, nothing is cached), and
staff users without `can_view_command_center` get a 403 page inside the admin.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from command_center.api.openapi import API_PREFIX
from command_center.audit import record_view
from command_center.permissions import can_view_command_center
from command_center.selectors.filters import filter_domains
from telemetry.contract import Label, Metric

SOCKET_PATH = "/ws/admin/observability/"
TITLE = "Command Center"


def _admin_context(request: HttpRequest, **extra) -> dict:
    return {**admin.site.each_context(request), "title": TITLE, **extra}


def command_center(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not can_view_command_center(user):
        return TemplateResponse(request, "command_center/forbidden.html", _admin_context(request), status=403)
    record_view(user, request.path, request.GET)
    page_config = {
        "apiBase": API_PREFIX,
        "socketPath": SOCKET_PATH,
        "loginUrl": reverse("admin:login"),
        # The browser names metrics and labels through these, so they stay spelled only in the contract.
        "metrics": {metric.name: metric.value for metric in Metric},
        "labels": {label.name: label.value for label in Label},
    }
    # No inline script on this page: kaiku_ops.security's Content-Security-Policy forbids it site-wide.
    context = _admin_context(request, page_config=page_config, domains=filter_domains())
    return TemplateResponse(request, "command_center/index.html", context)
