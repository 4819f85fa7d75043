"""The one access rule shared by the API, the pages and the sockets."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission

from command_center.permissions import can_view_command_center

pytestmark = pytest.mark.django_db


def test_superusers_and_permission_holders_may_view(superuser, system_admin):
    assert can_view_command_center(superuser)
    assert can_view_command_center(system_admin)


def test_others_may_not(plain_user, staff_user):
    assert not can_view_command_center(AnonymousUser())
    assert not can_view_command_center(None)
    assert not can_view_command_center(plain_user)
    assert not can_view_command_center(staff_user)  # staff alone is not a system admin


def test_the_permission_may_come_from_a_group(plain_user):
    group = Group.objects.create(name="sre")
    group.permissions.add(Permission.objects.get(codename="view_command_center"))
    plain_user.groups.add(group)
    assert can_view_command_center(type(plain_user).objects.get(pk=plain_user.pk))


def test_inactive_users_may_not_even_as_superusers(superuser):
    superuser.is_active = False
    assert not can_view_command_center(superuser)
