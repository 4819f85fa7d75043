"""The Command Center page inside the admin: who gets in, what the shell carries, where the sidebar links."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from command_center.models import AuditEvent
from telemetry.contract import Label, Metric

PAGE = "/admin/command-center/"


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="cc-config" type="application/json">') + len(
        '<script id="cc-config" type="application/json">')
    return json.loads(html[start:html.index("</script>", start)])


def test_the_page_lives_at_the_documented_address():
    assert reverse("command_center_pages:index") == PAGE


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_the_admin_login_and_back(client):
    response = client.get(PAGE + "?tab=logs")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/command-center/%3Ftab%3Dlogs"


@pytest.mark.django_db
def test_logged_in_users_who_are_not_staff_are_sent_to_the_admin_login(client, plain_user):
    client.force_login(plain_user)

    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_staff_without_the_permission_get_a_403_page_inside_the_admin(client, staff_user):
    client.force_login(staff_user)

    response = client.get(PAGE)

    assert response.status_code == 403
    assert [template.name for template in response.templates][0] == "command_center/forbidden.html"
    html = response.content.decode()
    assert "Can view the Command Center (system admin)" in html
    assert 'id="nav-sidebar"' in html  # still the admin around it
    assert "cc-config" not in html  # and none of the dashboard
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_inactive_superusers_are_not_let_in(client, superuser):
    client.force_login(superuser)
    superuser.is_active = False
    superuser.save()

    assert client.get(PAGE).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["superuser", "system_admin"])
def test_superusers_and_permission_holders_get_the_page(client, request, who):
    client.force_login(request.getfixturevalue(who))

    response = client.get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<div class="breadcrumbs">' in html and "Command Center" in html
    assert 'role="tablist"' in html and html.count('role="tab"') == 6
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_every_page_view_is_audited_once_a_minute(client, system_admin):
    client.force_login(system_admin)

    client.get(PAGE + "?range=7d")
    client.get(PAGE)

    event = AuditEvent.objects.get()
    assert (event.action, event.username, event.endpoint) == ("admin.observability.view", "ops", PAGE)
    assert event.params == {"range": "7d"}


@pytest.mark.django_db
def test_the_page_is_configured_through_a_json_script_not_inline_code(client, superuser):
    client.force_login(superuser)

    response = client.get(PAGE)

    config = page_config(response)
    assert config["apiBase"] == "/api/admin/observability/"
    assert config["socketPath"] == "/ws/admin/observability/"
    assert config["metrics"]["HTTP_REQUESTS_TOTAL"] == Metric.HTTP_REQUESTS_TOTAL.value
    assert config["labels"]["OUTCOME"] == Label.OUTCOME.value
    html = response.content.decode()
    script_tags = [tag.split(">")[0] for tag in html.split("<script")[1:]]
    assert all('src="' in tag or 'type="application/json"' in tag for tag in script_tags)
    assert " onclick=" not in html and " onerror=" not in html


@pytest.mark.django_db
def test_the_page_forbids_inline_scripts_with_its_content_security_policy(client, superuser):
    client.force_login(superuser)

    policy = client.get(PAGE)["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in policy
    assert directives["connect-src"] == "'self' ws://testserver wss://testserver"
    assert directives["frame-ancestors"] == "'none'"


@pytest.mark.django_db
def test_the_page_loads_the_vendored_uplot_and_no_cdn(client, superuser):
    client.force_login(superuser)

    html = client.get(PAGE).content.decode()

    assert "/static/vendor/uplot/uPlot.iife.min.js" in html
    assert "/static/vendor/uplot/uPlot.min.css" in html
    assert "https://" not in html.split("<body")[0]


def test_uplot_is_vendored_with_its_licence():
    from django.conf import settings

    vendor = settings.BASE_DIR / "static" / "vendor" / "uplot"
    assert "MIT License" in (vendor / "LICENSE").read_text()
    assert (vendor / "uPlot.iife.min.js").stat().st_size > 10_000


# --- the sidebar / index entry ------------------------------------------------------------------------

def sidebar_entries(html: str) -> int:
    """Entries named Command Center (the header's "View site" also leads to the page)."""
    return html.count(f'href="{PAGE}">Command Center<')


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["superuser", "system_admin"])
def test_permitted_users_find_the_command_center_in_the_admin_index(client, request, who):
    client.force_login(request.getfixturevalue(who))

    html = client.get("/admin/").content.decode()

    assert sidebar_entries(html) >= 1
    assert 'class="model-commandcenterpage' in html


@pytest.mark.django_db
def test_the_traces_domain_filter_offers_the_domains_spans_carry(client, superuser):
    client.force_login(superuser)

    html = client.get(PAGE).content.decode()

    traces_form = html[html.index('id="cc-trace-filters"'):]
    domain_select = traces_form[traces_form.index('name="domain"'):]
    domain_select = domain_select[:domain_select.index("</select>")]
    assert "<option>api</option>" in domain_select and "<option>db</option>" in domain_select


@pytest.mark.django_db
def test_the_sidebar_on_other_admin_pages_links_the_command_center(client, superuser):
    client.force_login(superuser)

    html = client.get("/admin/auth/user/").content.decode()

    assert 'id="nav-sidebar"' in html
    assert sidebar_entries(html) == 1


@pytest.mark.django_db
def test_staff_without_the_permission_see_no_command_center_entry(client, staff_user):
    client.force_login(staff_user)

    html = client.get("/admin/").content.decode()

    assert sidebar_entries(html) == 0
    assert "commandcenterpage" not in html


@pytest.mark.django_db
def test_a_system_admin_without_model_permissions_gets_a_section_that_links_the_page(client, system_admin):
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = system_admin

    apps = admin.site.get_app_list(request)

    section = next(app for app in apps if app["app_label"] == "command_center")
    assert section["app_url"] == PAGE  # the app index would be a 404 for this user
    assert [model["name"] for model in section["models"]] == ["Command Center"]


@pytest.mark.django_db
def test_the_entry_comes_first_in_the_command_center_section_for_superusers(client, superuser):
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = superuser

    section = next(app for app in admin.site.get_app_list(request) if app["app_label"] == "command_center")

    assert section["models"][0]["admin_url"] == PAGE
    assert len(section["models"]) > 1  # the audit log is still listed
    assert section["app_url"] == "/admin/command_center/"


@pytest.mark.django_db
def test_other_app_indexes_do_not_grow_a_command_center_entry(client, superuser):
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/auth/")
    request.user = superuser

    apps = admin.site.get_app_list(request, app_label="auth")

    assert [app["app_label"] for app in apps] == ["auth"]
