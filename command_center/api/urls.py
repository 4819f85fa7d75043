"""URL patterns (placeholder until its owner fills it in)."""

urlpatterns: list = []
