"""The admin site with a Command Center entry in its sidebar and index.

The entry is a link, not a model: `get_app_list` (which feeds both the index page and the nav
sidebar through `each_context`) gets one extra row in the "Command Center" app section, shown
only to users for whom `can_view_command_center` holds. Installed by naming
`CommandCenterAdminConfig` instead of "django.contrib.admin" in INSTALLED_APPS, the documented
way to replace the default site, so `admin.site` everywhere is this site.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.sites import AdminSite
from django.http import HttpRequest
from django.urls import reverse

from command_center.permissions import can_view_command_center

APP_LABEL = "command_center"
APP_NAME = "Command Center"
ENTRY_OBJECT_NAME = "CommandCenterPage"


def command_center_url() -> str:
    return reverse("command_center_pages:index")


def command_center_entry() -> dict:
    """A row shaped like the admin's model rows (see admin/app_list.html)."""
    url = command_center_url()
    return {
        "name": APP_NAME,
        "object_name": ENTRY_OBJECT_NAME,
        "perms": {"add": False, "change": False, "delete": False, "view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }


class CommandCenterAdminSite(AdminSite):
    def each_context(self, request: HttpRequest) -> dict:
        # "View site" would lead to `/`, which this server does not serve (a 404): it opens the Command
        # Center for those who may see it and is left out for everyone else.
        context = super().each_context(request)
        context["site_url"] = command_center_url() if can_view_command_center(request.user) else None
        return context

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        app_list = super().get_app_list(request, app_label)
        if app_label not in (None, APP_LABEL) or not can_view_command_center(request.user):
            return app_list
        section = next((app for app in app_list if app["app_label"] == APP_LABEL), None)
        if section is None:
            # The user may see no model of the app (e.g. not the audit log): the section then
            # links to the page itself, because the app index would be a 404 for them.
            section = {"name": APP_NAME, "app_label": APP_LABEL, "app_url": command_center_url(),
                       "has_module_perms": True, "models": []}
            app_list = sorted([*app_list, section], key=lambda app: app["name"].lower())
        section["models"].insert(0, command_center_entry())
        return app_list


class CommandCenterAdminConfig(AdminConfig):
    default_site = "command_center.admin_site.CommandCenterAdminSite"
