"""The OpenAPI document lists exactly the endpoints the URL resolver has, with exactly their parameters."""

from __future__ import annotations

import pytest
from django.urls import reverse

from command_center.api import urls as api_urls
from command_center.api.openapi import API_PREFIX, document
from command_center.api.params import ENDPOINTS, InvalidParameters, parse
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401


def resolver_paths() -> dict[str, object]:
    return {
        reverse(f"{api_urls.app_name}:{pattern.name}"): pattern.callback for pattern in api_urls.urlpatterns
    }


def test_every_endpoint_is_documented_and_nothing_else():
    assert set(document()["paths"]) == set(resolver_paths())


def test_every_parameter_a_view_accepts_is_documented_and_nothing_else():
    documented = {
        path: {p["name"] for p in item["get"]["parameters"]} for path, item in document()["paths"].items()
    }
    for path, view in resolver_paths().items():
        accepted = set(view.endpoint.param_names)
        assert documented[path] == accepted, path
        # ...and the view really rejects anything outside the documented set.
        with pytest.raises(InvalidParameters) as raised:
            from django.http import QueryDict
            from django.utils import timezone

            parse(view.endpoint, QueryDict("undocumented=1"), timezone.now())
        assert "undocumented" in raised.value.detail


def test_enums_and_bounds_are_in_the_schema():
    parameters = {p["name"]: p for p in document()["paths"][API_PREFIX + "top-routes"]["get"]["parameters"]}
    assert parameters["sort"]["schema"]["enum"] == ["latency", "errors"]
    assert (parameters["limit"]["schema"]["minimum"], parameters["limit"]["schema"]["maximum"]) == (1, 100)
    assert document()["openapi"].startswith("3.")
    assert len(ENDPOINTS) == len(document()["paths"])


@pytest.mark.django_db
def test_the_document_is_served(client, system_admin):
    client.force_login(system_admin)
    body = client.get(reverse("observability:openapi")).json()
    assert body == document()
