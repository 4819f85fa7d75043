"""The Command Center page inside the admin (mounted at /admin/command-center/)."""

from django.contrib import admin
from django.urls import path

from command_center.pages import views

app_name = "command_center_pages"

urlpatterns = [
    # The admin's own gate: anonymous or non-staff users go to the admin login; never cached.
    path("", admin.site.admin_view(views.command_center), name="index"),
]
