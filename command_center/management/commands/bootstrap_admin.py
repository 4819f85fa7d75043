"""Create the first system-admin account of a new install (used by `make run`).

Runs once: when any superuser exists it does nothing. The generated password is printed
once and kept in `.data/admin-credentials` (mode 600) so the operator can find it again.
"""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first superuser with a generated password, unless one exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("A system admin already exists; credentials are in "
                              f"{settings.DATA_DIR / 'admin-credentials'} if this install created them.")
            return
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email="", password=password)
        path = settings.DATA_DIR / "admin-credentials"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"username={username}\npassword={password}\n")
        os.chmod(path, 0o600)
        self.stdout.write(self.style.SUCCESS(
            f"Created system admin '{username}' with password: {password}\n"
            f"(stored in {path}, readable only by you)"))
