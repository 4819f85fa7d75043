"""The Command Center page inside the admin (mounted at /admin/command-center/)."""

from django.urls import path

from command_center.pages import views

app_name = "command_center_pages"

urlpatterns = [
    path("", views.command_center, name="index"),
]
