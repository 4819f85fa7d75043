"""Check, before anything starts, that the configured services answer.

Prints one line per problem, saying what is wrong and how to fix it, and exits non-zero.
(Settings that cannot even be parsed are reported by manage.py itself, also in one line.)
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from kaiku_ops.health import check_postgres, check_redis


class Command(BaseCommand):
    help = "Check that PostgreSQL and Redis are reachable with the current configuration."

    def handle(self, *args, **options):
        problems = []
        if failure := check_postgres():
            problems.append(f"PostgreSQL at {_redacted(settings.DATABASE_URL)} is unreachable ({failure}); "
                            "start it, fix DATABASE_URL, or unset it to use the embedded PostgreSQL")
        if failure := check_redis():
            problems.append(f"Redis at {_redacted(settings.REDIS_URL)} is unreachable ({failure}); "
                            "start it, fix REDIS_URL, or unset it to use the embedded Redis")
        connections.close_all()
        if problems:
            raise CommandError("; ".join(problems))
        self.stdout.write("PostgreSQL and Redis answer.")


def _redacted(url: str) -> str:
    """Never print a password that sits in a service URL."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
