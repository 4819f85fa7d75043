"""Rare-term search through a trigram GIN index on the log chunks, and a trace look-up that checks each chunk's
Bloom filter with a few cheap expressions instead of a SQL function per chunk (issue 15, item 3).

Rare-term search. `pg_trgm` (migration 0011) indexes the upper-cased text of every event and message of a log
chunk (`telemetry_chunk_text`, one line each), so `upper(chunk_text) LIKE upper('%term%')` -- the condition
Django's `icontains` writes -- reads only the chunks holding the term's trigrams. A row whose event or message
contains the term makes its chunk's text contain it, so the chunk condition never drops a match. The index costs
~5 bytes a log record on realistic data (docs/benchmarks.md).

Trace look-up. Migration 0007's `telemetry_bloom_may_hold(bloom, trace_id)` hashes the trace id and aggregates
its three probes in a SQL function that PostgreSQL cannot inline: ~0.2 ms a chunk. `telemetry_bloom_has(bloom,
h1, h2, h3)` takes the three hashes, computed once per query by the caller (the same md5 slices:
telemetry.queries.stored.bloom_hashes), and is a plain expression PostgreSQL inlines into the scan of the chunks.
GIN indexes over the chunks' trace ids were measured too and left out: a whole-uuid index costs ~36 bytes an id,
and indexes over keys of the ids (three 16-bit slices) 30 bytes a span and 44 a log record at `heavy` for ~3
candidate chunks a week; smaller key spaces make every large chunk a candidate (docs/benchmarks.md).

The log view gains `chunk_text` (for a hot row: its own event and message), computed only when a query filters
on it. Upgrade of an existing database: nothing is re-packed; the index is built here over the chunks already
stored (CREATE INDEX on the partitioned table reaches every partition). The SQL is frozen as this migration runs
it.
"""

from django.db import migrations, models

SQL = r"""
-- array_to_string is STABLE (in general, not for text); the function is IMMUTABLE so an index may use it.
CREATE FUNCTION telemetry_chunk_text(event text[], message text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_string(event, E'\n', '') || E'\n' || array_to_string(message, E'\n', '')
$$;
COMMENT ON FUNCTION telemetry_chunk_text(text[], text[]) IS
    'every event and message of a log chunk, one a line: what rare-term search matches with pg_trgm';

-- telemetry_bloom_may_hold with the three probes' hashes given (md5 of the id's text, 32 bits at 1, 9, 17):
-- one expression, inlined by the planner.
CREATE FUNCTION telemetry_bloom_has(bloom bytea, h1 bigint, h2 bigint, h3 bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT bloom IS NULL OR (get_bit(bloom, (h1 % (length(bloom) * 8))::int)
                             & get_bit(bloom, (h2 % (length(bloom) * 8))::int)
                             & get_bit(bloom, (h3 % (length(bloom) * 8))::int)) = 1
$$;

-- Chunks are written in bulk by the packing job, never updated: no pending list to merge on reads.
CREATE INDEX telemetry_log_chunks_text ON telemetry_log_chunks
    USING gin (upper(telemetry_chunk_text(event, message)) gin_trgm_ops) WITH (fastupdate = off);

CREATE OR REPLACE VIEW telemetry_log_events_all AS
SELECT e.ts, e.id, e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs,
       e.ts AS chunk_first_ts, e.ts AS chunk_last_ts, NULL::bytea AS chunk_trace_bloom,
       e.event || E'\n' || e.message AS chunk_text
FROM telemetry_log_events e
UNION ALL
SELECT u.ts, u.id, c.level, c.service, c.domain, u.event, u.message,
       replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs,
       c.first_ts, c.last_ts, c.trace_bloom, telemetry_chunk_text(c.event, c.message)
FROM telemetry_log_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.id, c.event, c.message, c.trace_ids, c.span_ids, c.attrs)
    AS u(ts, id, event, message, trace_id, span_id, attrs);
"""

REVERSE_SQL = r"""
DROP VIEW telemetry_log_events_all;
CREATE VIEW telemetry_log_events_all AS
SELECT e.ts, e.id, e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs,
       e.ts AS chunk_first_ts, e.ts AS chunk_last_ts, NULL::bytea AS chunk_trace_bloom
FROM telemetry_log_events e
UNION ALL
SELECT u.ts, u.id, c.level, c.service, c.domain, u.event, u.message,
       replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs,
       c.first_ts, c.last_ts, c.trace_bloom
FROM telemetry_log_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.id, c.event, c.message, c.trace_ids, c.span_ids, c.attrs)
    AS u(ts, id, event, message, trace_id, span_id, attrs);
COMMENT ON VIEW telemetry_log_events_all IS 'every stored log record: hot rows and packed chunks unnested';
DROP INDEX telemetry_log_chunks_text;
DROP FUNCTION telemetry_bloom_has(bytea, bigint, bigint, bigint);
DROP FUNCTION telemetry_chunk_text(text[], text[]);
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0013_drop_unread_rollup_layers")]

    operations = [
        migrations.RunSQL(SQL, REVERSE_SQL),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AddField(model_name="storedlogevent", name="chunk_text", field=models.TextField(null=True)),
        ]),
    ]
