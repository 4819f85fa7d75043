"""Error group hour keys that carry the count (issue 16, item 2: the sparklines of the shown groups).

A sparkline reads the hour rows of each shown group by its (fingerprint, hour) key. The key held no count, so
every row read was also a heap fetch: for 20 groups over 7 days some 3,400 pages for 3,340 hour rows (~6 ms).
With the count INCLUDEd in the primary key those reads are index-only scans (~80 pages, ~1.4 ms). The key columns
and their uniqueness are unchanged: ingest's ON CONFLICT (fingerprint, hour) still names this key.

Rebuilds the key; the table is locked while it is built (under a second for 30 days of 200 groups here).
Reversed by rebuilding it without the count.
"""

from django.db import migrations

SQL = """
ALTER TABLE telemetry_error_group_hours
    DROP CONSTRAINT telemetry_error_group_hours_pkey,
    ADD CONSTRAINT telemetry_error_group_hours_pkey PRIMARY KEY (fingerprint, hour) INCLUDE (count);
"""

REVERSE_SQL = """
ALTER TABLE telemetry_error_group_hours
    DROP CONSTRAINT telemetry_error_group_hours_pkey,
    ADD CONSTRAINT telemetry_error_group_hours_pkey PRIMARY KEY (fingerprint, hour);
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0018_error_group_days")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
