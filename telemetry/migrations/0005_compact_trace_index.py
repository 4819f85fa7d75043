"""A narrower trace index: why each span was kept, the duration index on db spans only, a fuller hash index.

`kept_reason` ("char", 1 byte; it fits in the row's alignment padding, so rows do not grow) lets retention
rewrite an old day partition without the spans kept only because their trace was sampled (see
telemetry.retention). Existing rows get NULL: nothing says why they were kept, so they stay 30 days.
Only "top slow db queries" (and the db filters of the traces list) read spans by duration, all with
`domain = 'db'`: the partial index holds a third of the rows of the full one at `heavy`.
Trace ids are only ever added: the hash index splits its buckets when they are full rather than at 75 %,
36 -> 31 bytes a row (docs/benchmarks.md).
Creating the indexes builds them on every day partition, blocking trace writes meanwhile (a minute or two
for 30 days at `heavy`); collectors retry.
"""

from django.db import migrations

COMPACT_TRACE_INDEX_SQL = """
ALTER TABLE telemetry_trace_index ADD COLUMN kept_reason "char" NULL;
COMMENT ON COLUMN telemetry_trace_index.kept_reason IS
    'why the span was kept: e = error or HTTP 5xx, s = slow, p = only its trace was sampled, NULL = unknown';
DROP INDEX telemetry_trace_index_domain_duration;
CREATE INDEX telemetry_trace_index_db_duration ON telemetry_trace_index (duration_ms) WHERE domain = 'db';
DROP INDEX telemetry_trace_index_trace_id;
CREATE INDEX telemetry_trace_index_trace_id ON telemetry_trace_index USING hash (trace_id) WITH (fillfactor = 100);
"""

UNDO_COMPACT_TRACE_INDEX_SQL = """
DROP INDEX telemetry_trace_index_trace_id;
CREATE INDEX telemetry_trace_index_trace_id ON telemetry_trace_index USING hash (trace_id);
DROP INDEX telemetry_trace_index_db_duration;
CREATE INDEX telemetry_trace_index_domain_duration ON telemetry_trace_index (domain, duration_ms);
ALTER TABLE telemetry_trace_index DROP COLUMN kept_reason;
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0004_metric_minutes")]

    operations = [migrations.RunSQL(COMPACT_TRACE_INDEX_SQL, UNDO_COMPACT_TRACE_INDEX_SQL)]
