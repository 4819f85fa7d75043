"""The contrib extensions the read side may index with (issue 15, item 4).

`pg_trgm`: trigram GIN indexes, so a substring search over log text uses an index instead of a scan.
`btree_gin`: GIN operator classes for plain scalar columns, so one GIN index can hold a scalar key beside an
array or trigram column.

Both ship with PostgreSQL's contrib (the machine's PostgreSQL 15, the embedded PostgreSQL 18) and both are
"trusted" since PostgreSQL 13: the owner of the database may create them without being a superuser.
`telemetry.checks.check_required_extensions` names a missing one in one line at start-up.

Going back leaves them installed: another schema in the same database may use them, and dropping an extension
drops every index built on it. The SQL is frozen as this migration runs it.
"""

from django.db import migrations

SQL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0010_error_groups")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
