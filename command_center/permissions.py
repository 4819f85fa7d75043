"""Who may see the Command Center: the one access rule shared by the API, the pages and the sockets."""

from __future__ import annotations

from typing import Any

VIEW_PERMISSION = "command_center.view_command_center"


def can_view_command_center(user: Any) -> bool:
    """Active superusers and active holders of `command_center.view_command_center` ("system admins")."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_superuser or user.has_perm(VIEW_PERMISSION))
