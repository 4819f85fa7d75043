"""The Command Center page: a shell that the browser fills from the API and the socket.

It runs no query of its own. Access follows the admin: anonymous or non-staff users go to the
admin login, staff users without `can_view_command_center` get a 403 page inside the admin.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache

from command_center.audit import record_view
from command_center.permissions import can_view_command_center
from telemetry.contract import Label, Metric

API_PREFIX = "/api/admin/observability/"
SOCKET_PATH = "/ws/admin/observability/"
TITLE = "Command Center"


def _admin_context(request: HttpRequest, **extra) -> dict:
    return {**admin.site.each_context(request), "title": TITLE, **extra}


@never_cache
def command_center(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_active and user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
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
    context = _admin_context(request, page_config=page_config)
    return TemplateResponse(request, "command_center/index.html", context)
