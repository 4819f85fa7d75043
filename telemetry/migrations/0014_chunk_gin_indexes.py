"""Packed chunks found by PostgreSQL's GIN indexes instead of a Bloom filter checked in SQL (issue 15, item 3).

Trace look-up. Migration 0007 gave every chunk a Bloom filter of its trace ids, checked by a SQL function on
every chunk of the window (~0.2-0.4 ms each: 30 days of span chunks cost seconds). Now each chunk table has a
GIN index over its trace ids' *keys*: three 16-bit slices of the id's right-most bytes (random in W3C and X-Ray
ids alike), each tagged with its slice number, so a key is one of 3 x 65,536 int4 values:
    telemetry_trace_keys(trace_ids) @> telemetry_trace_keys(ARRAY[<uuid>])   -- the chunks that may hold it
GIN intersects the three posting lists; a chunk of n distinct ids is a false candidate with a probability of
about (n / 65,536)^3 (1,000 ids: 4e-6). Keys instead of whole ids keep the index small: a key is shared by
many chunks of a day partition, so an entry is mostly a compressed posting list (~1-2 bytes a chunk), where
whole uuids would cost an index tuple (~36 bytes) per id and chunk.

Rare-term search. `pg_trgm` (migration 0011) indexes the upper-cased text of every event and message of a log
chunk (`telemetry_chunk_text`, one line each), so `upper(chunk_text) LIKE upper('%term%')` -- the condition
Django's `icontains` writes -- reads only the chunks holding the term's trigrams. A row whose event or message
contains the term makes its chunk's text contain it, so the chunk condition never drops a match.

The views gain `chunk_trace_keys` and (logs) `chunk_text`, both computed only when a query filters on them
(for a hot row: the keys of its own trace id, and its own event and message). `chunk_trace_bloom`, its
trigger and its functions go.

Upgrade of an existing database: nothing is re-packed. The indexes are built here over the chunks already
stored (CREATE INDEX on the partitioned tables reaches every partition), from the trace-id and text arrays
every chunk already has. The SQL is frozen as this migration runs it.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import migrations, models

SQL = r"""
CREATE FUNCTION telemetry_trace_keys(trace_ids uuid[]) RETURNS int4[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT p * 65536 + get_byte(b, 8 + 2 * p) * 256 + get_byte(b, 9 + 2 * p)), '{}')
    FROM (SELECT uuid_send(id) AS b FROM unnest(trace_ids) AS ids(id) WHERE id IS NOT NULL) AS bytes,
         generate_series(1, 3) AS slice(p)
$$;
COMMENT ON FUNCTION telemetry_trace_keys(uuid[]) IS
    'GIN keys of trace ids: bytes 10-15 of each id as three 16-bit keys, p * 65536 + value (p = 1, 2, 3)';

-- array_to_string is STABLE (in general, not for text); the function is IMMUTABLE so an index may use it.
CREATE FUNCTION telemetry_chunk_text(event text[], message text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_string(event, E'\n', '') || E'\n' || array_to_string(message, E'\n', '')
$$;
COMMENT ON FUNCTION telemetry_chunk_text(text[], text[]) IS
    'every event and message of a log chunk, one a line: what rare-term search matches with pg_trgm';

DROP VIEW telemetry_log_events_all;
DROP VIEW telemetry_trace_index_all;
DROP TRIGGER telemetry_log_chunks_trace_bloom ON telemetry_log_chunks;
DROP TRIGGER telemetry_trace_chunks_trace_bloom ON telemetry_trace_chunks;
ALTER TABLE telemetry_log_chunks DROP COLUMN trace_bloom;
ALTER TABLE telemetry_trace_chunks DROP COLUMN trace_bloom;
DROP FUNCTION telemetry_chunk_trace_bloom();
DROP FUNCTION telemetry_bloom_may_hold(bytea, uuid);
DROP FUNCTION telemetry_trace_bloom(uuid[]);

-- Chunks are written in bulk by the packing job, never updated: no pending list to merge on reads.
CREATE INDEX telemetry_log_chunks_trace_keys ON telemetry_log_chunks
    USING gin (telemetry_trace_keys(trace_ids)) WITH (fastupdate = off);
CREATE INDEX telemetry_trace_chunks_trace_keys ON telemetry_trace_chunks
    USING gin (telemetry_trace_keys(trace_ids)) WITH (fastupdate = off);
CREATE INDEX telemetry_log_chunks_text ON telemetry_log_chunks
    USING gin (upper(telemetry_chunk_text(event, message)) gin_trgm_ops) WITH (fastupdate = off);

CREATE VIEW telemetry_log_events_all AS
SELECT e.ts, e.id, e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs,
       e.ts AS chunk_first_ts, e.ts AS chunk_last_ts,
       telemetry_trace_keys(ARRAY[e.trace_id::uuid]) AS chunk_trace_keys,
       e.event || E'\n' || e.message AS chunk_text
FROM telemetry_log_events e
UNION ALL
SELECT u.ts, u.id, c.level, c.service, c.domain, u.event, u.message,
       replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs,
       c.first_ts, c.last_ts, telemetry_trace_keys(c.trace_ids), telemetry_chunk_text(c.event, c.message)
FROM telemetry_log_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.id, c.event, c.message, c.trace_ids, c.span_ids, c.attrs)
    AS u(ts, id, event, message, trace_id, span_id, attrs);
COMMENT ON VIEW telemetry_log_events_all IS 'every stored log record: hot rows and packed chunks unnested';

CREATE VIEW telemetry_trace_index_all AS
SELECT t.ts, t.id, t.duration_ms, t.trace_id, t.span_name, t.domain, t.route, t.status_code, t.service,
       t.kept_reason, t.ts AS chunk_first_ts, t.ts AS chunk_last_ts,
       telemetry_trace_keys(ARRAY[t.trace_id::uuid]) AS chunk_trace_keys
FROM telemetry_trace_index t
UNION ALL
SELECT u.ts, u.id, u.duration_ms, replace(u.trace_id::text, '-', ''), u.span_name, c.domain, u.route,
       u.status_code, c.service, u.kept_reason, c.first_ts, c.last_ts, telemetry_trace_keys(c.trace_ids)
FROM telemetry_trace_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.id, c.duration_ms, c.trace_ids, c.span_name, c.route, c.status_code,
                          c.kept_reason)
    AS u(ts, id, duration_ms, trace_id, span_name, route, status_code, kept_reason);
COMMENT ON VIEW telemetry_trace_index_all IS 'every stored span: hot rows and packed chunks unnested';
"""

# Back to migration 0007's layout: the Bloom filters are rebuilt for the chunks stored meanwhile.
REVERSE_SQL = r"""
DROP VIEW telemetry_log_events_all;
DROP VIEW telemetry_trace_index_all;
DROP INDEX telemetry_log_chunks_text;
DROP INDEX telemetry_trace_chunks_trace_keys;
DROP INDEX telemetry_log_chunks_trace_keys;
DROP FUNCTION telemetry_chunk_text(text[], text[]);
DROP FUNCTION telemetry_trace_keys(uuid[]);

CREATE FUNCTION telemetry_trace_bloom(trace_ids uuid[]) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH size AS (
        SELECT greatest(64, 2 ^ ceil(log(2, greatest(cardinality(trace_ids), 1) * 18.0 / 8)))::int AS bytes
    ), probes AS (
        SELECT DISTINCT ('x' || substr(md5(id::text), p, 8))::bit(32)::bigint % (size.bytes * 8) AS bit
        FROM size, unnest(trace_ids) AS ids(id), unnest(ARRAY[1, 9, 17]) AS probe(p)
        WHERE id IS NOT NULL
    ), set_bytes AS (
        SELECT bit / 8 AS n, bit_or(1 << (bit % 8)::int) AS value FROM probes GROUP BY 1
    )
    SELECT decode(string_agg(lpad(to_hex(coalesce(set_bytes.value, 0)), 2, '0'), '' ORDER BY g.n), 'hex')
    FROM size CROSS JOIN generate_series(0, size.bytes - 1) AS g(n) LEFT JOIN set_bytes ON set_bytes.n = g.n
$$;
CREATE FUNCTION telemetry_bloom_may_hold(bloom bytea, trace_id uuid) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT bloom IS NULL OR bool_and(
        get_bit(bloom, (('x' || substr(md5(trace_id::text), p, 8))::bit(32)::bigint % (length(bloom) * 8))::int) = 1)
    FROM unnest(ARRAY[1, 9, 17]) AS probe(p)
$$;
CREATE FUNCTION telemetry_chunk_trace_bloom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.trace_bloom := telemetry_trace_bloom(NEW.trace_ids);
    RETURN NEW;
END
$$;
ALTER TABLE telemetry_log_chunks ADD COLUMN trace_bloom bytea NULL;
ALTER TABLE telemetry_trace_chunks ADD COLUMN trace_bloom bytea NULL;
UPDATE telemetry_log_chunks SET trace_bloom = telemetry_trace_bloom(trace_ids);
UPDATE telemetry_trace_chunks SET trace_bloom = telemetry_trace_bloom(trace_ids);
CREATE TRIGGER telemetry_log_chunks_trace_bloom BEFORE INSERT ON telemetry_log_chunks
    FOR EACH ROW EXECUTE FUNCTION telemetry_chunk_trace_bloom();
CREATE TRIGGER telemetry_trace_chunks_trace_bloom BEFORE INSERT ON telemetry_trace_chunks
    FOR EACH ROW EXECUTE FUNCTION telemetry_chunk_trace_bloom();

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

CREATE VIEW telemetry_trace_index_all AS
SELECT t.ts, t.id, t.duration_ms, t.trace_id, t.span_name, t.domain, t.route, t.status_code, t.service,
       t.kept_reason, t.ts AS chunk_first_ts, t.ts AS chunk_last_ts, NULL::bytea AS chunk_trace_bloom
FROM telemetry_trace_index t
UNION ALL
SELECT u.ts, u.id, u.duration_ms, replace(u.trace_id::text, '-', ''), u.span_name, c.domain, u.route,
       u.status_code, c.service, u.kept_reason, c.first_ts, c.last_ts, c.trace_bloom
FROM telemetry_trace_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.id, c.duration_ms, c.trace_ids, c.span_name, c.route, c.status_code,
                          c.kept_reason)
    AS u(ts, id, duration_ms, trace_id, span_name, route, status_code, kept_reason);
COMMENT ON VIEW telemetry_trace_index_all IS 'every stored span: hot rows and packed chunks unnested';
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0013_drop_unread_rollup_layers")]

    operations = [
        migrations.RunSQL(SQL, REVERSE_SQL),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(model_name="storedlogevent", name="chunk_trace_bloom"),
            migrations.RemoveField(model_name="storedtraceentry", name="chunk_trace_bloom"),
            migrations.AddField(model_name="storedlogevent", name="chunk_trace_keys",
                                field=ArrayField(models.IntegerField(), null=True)),
            migrations.AddField(model_name="storedtraceentry", name="chunk_trace_keys",
                                field=ArrayField(models.IntegerField(), null=True)),
            migrations.AddField(model_name="storedlogevent", name="chunk_text", field=models.TextField(null=True)),
        ]),
    ]
