"""Dashboard reads may go to a replica (DATABASE_REPLICA_URL); every write stays on the primary.

Selectors opt in by calling `.using(read_alias())`; nothing is routed to the replica implicitly,
so audit writes and ingestion can never land there.
"""

from __future__ import annotations

from django.conf import settings


def read_alias() -> str:
    return "replica" if "replica" in settings.DATABASES else "default"


class ReplicaRouter:
    def db_for_write(self, model, **hints):
        return "default"

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == "replica":
            return False
        if db == "voice":
            # The platform database is read-only to us; its tables are the platform's.
            return False
        return None
