"""Log chunks without the random per-row id, one chunk per UTC hour and level, and search indexes over the stored
text (issue 15).

A packed log record cost ~57 bytes, ClickHouse ~28 on the same data. Where it went, and what this layout does:
- `id uuid[]`: 16 incompressible bytes a record, kept only to dedupe re-sent records and to break ties when paging.
  Gone: a packed row is known by its content (telemetry.packing.LOG_KEY), and readers see a content id,
  `telemetry_log_row_id` (md5 of the row's time and fields), that a row keeps when it is packed: computed alike
  for hot and packed rows, so pages and cursors do not change when an hour is packed.
- `ts timestamptz[]` (~6 bytes compressed): now the offset from the chunk's UTC hour in microseconds, shifted into
  the range of an integer (`telemetry_log_ts_offset`, back with `telemetry_log_ts`): ~4 bytes.
- `event text[]`, `message text[]`: now `events` and `messages`, each one text with U+001E between the rows'
  values (`telemetry_split_joined` splits them). Ingest strips control characters from free text, so the
  separator never occurs in what the receiver stores; a hot row that holds it anyway stays hot (never packed).
  The trigram index reads the stored text as is (`events || E'\n' || messages`), so a candidate chunk is checked
  by a LIKE over the stored text instead of rebuilding the text from arrays and upper-casing it.
- one chunk per (UTC hour, level) of at most 3,000 rows (in service, domain, event, time order) instead of one per
  (hour, level, service, domain): ~80 instead of ~700 chunks a day at `heavy`, so the per-chunk costs (heap row,
  TOAST pointers and chunk headers, index entries) and the poor compression of small chunks mostly go; service
  and domain are per-row arrays (they compress to ~0). The cap bounds what a search unpacks per candidate chunk.
- digit search: a trigram of digits is in nearly every chunk that prints numbers, so a numeric term made most
  chunks candidates. Each chunk now has a Bloom filter of its digit 5-grams (`digit_bloom`: every run of five
  digits of its text, `telemetry_digit_grams`, as migration 0007's trace-id filter with the 5-gram's md5 as the
  id), so a term with five digits in a row reads only the chunks that may hold all of its 5-grams. A GIN index
  over the 5-grams was tried first: exact, but ~4 bytes a record (one entry per distinct 5-gram and day).
- kept as they were, for the trace look-up: `trace_ids`, `span_ids`, `first_ts`, `last_ts` and `trace_bloom`.

The view gains `chunk_packed` (false for a hot row: a reader writes `NOT chunk_packed OR <chunk condition>`,
which PostgreSQL folds per branch, true for hot rows, the indexable condition for chunks) and
`chunk_digit_bloom` (NULL for a hot row, which `telemetry_bloom_has` takes as "may hold").

Upgrade of an existing database: every log chunk is re-packed into the new layout (the old table is renamed with
its partitions, a new partitioned table gets partitions of the same bounds, the rows are moved, the old table is
dropped); ~10 s a day of `heavy` data here. A packed row of the old layout that holds the separator is moved
back to the hot table instead. Going back re-packs into the old layout with fresh random ids. The SQL is frozen as
this migration runs it.
"""

from django.db import migrations, models

FUNCTIONS_SQL = r"""
CREATE FUNCTION telemetry_log_ts_offset(ts timestamptz) RETURNS integer
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT ((extract(epoch FROM ts - date_trunc('hour', ts, 'UTC')) * 1000000)::bigint - 2147483648)::integer
$$;
COMMENT ON FUNCTION telemetry_log_ts_offset(timestamptz) IS
    'a log row''s time in its chunk: microseconds since its UTC hour, minus 2^31 (an hour fits an integer)';

CREATE FUNCTION telemetry_log_ts(first_ts timestamptz, ts_offset integer) RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT date_trunc('hour', first_ts, 'UTC') + (ts_offset::bigint + 2147483648) * interval '1 microsecond'
$$;

-- A chunk of one row may hold an empty text, which string_to_array would make an empty array.
CREATE FUNCTION telemetry_split_joined(joined text, row_count integer) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN row_count = 1 THEN ARRAY[joined] ELSE string_to_array(joined, E'\x1e') END
$$;

CREATE FUNCTION telemetry_log_row_id(ts timestamptz, level text, service text, domain text, event text,
                                     message text, trace_id text, span_id text, attrs jsonb) RETURNS uuid
-- STABLE as its body (extract from a timestamptz): an IMMUTABLE one is not inlined, ~20 us a row more.
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT md5((extract(epoch FROM ts) * 1000000)::bigint::text || E'\x1f' || level || E'\x1f' || service
               || E'\x1f' || domain || E'\x1f' || event || E'\x1f' || message || E'\x1f' || coalesce(trace_id, '')
               || E'\x1f' || coalesce(span_id, '') || E'\x1f' || attrs::text)::uuid
$$;
COMMENT ON FUNCTION telemetry_log_row_id(timestamptz, text, text, text, text, text, text, text, jsonb) IS
    'the id readers see for a log row, hot or packed: md5 of its time and fields';

CREATE FUNCTION telemetry_digit_grams(text) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(run[1], i, 5)::integer), '{}')
    FROM regexp_matches($1, '[0-9]{5,}', 'g') AS run, generate_series(1, length(run[1]) - 4) AS i
$$;
COMMENT ON FUNCTION telemetry_digit_grams(text) IS
    'every run of 5 ASCII digits in the text, as integers: what a numeric search term narrows log chunks by';
"""

NEW_TABLE_SQL = r"""
CREATE TABLE telemetry_log_chunks (
    first_ts  timestamptz   NOT NULL,
    last_ts   timestamptz   NOT NULL,
    level     text          NOT NULL,
    row_count integer       NOT NULL,
    trace_ids uuid[]        NOT NULL,
    ts        integer[]     NOT NULL,
    services  text[]        NOT NULL,
    domains   text[]        NOT NULL,
    events    text          NOT NULL,
    messages  text          NOT NULL,
    span_ids  bigint[]      NOT NULL,
    attrs     jsonb[]       NOT NULL,
    trace_bloom bytea       NULL,
    digit_bloom bytea       NULL
) PARTITION BY RANGE (first_ts);
COMMENT ON TABLE telemetry_log_chunks IS
    'packed telemetry_log_events rows: one chunk per UTC hour and level; see telemetry.packing';

CREATE FUNCTION telemetry_log_chunk_blooms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.trace_bloom := telemetry_trace_bloom(NEW.trace_ids);
    NEW.digit_bloom := telemetry_trace_bloom(ARRAY(
        SELECT md5(gram::text)::uuid FROM unnest(telemetry_digit_grams(NEW.events || E'\n' || NEW.messages)) gram));
    RETURN NEW;
END
$$;
CREATE TRIGGER telemetry_log_chunks_blooms BEFORE INSERT ON telemetry_log_chunks
    FOR EACH ROW EXECUTE FUNCTION telemetry_log_chunk_blooms();
"""

# The old table's partitions, renamed out of the way, give their bounds to the new ones.
SWAP_PARTITIONS_SQL = r"""
DO $$
DECLARE
    part record;
BEGIN
    FOR part IN SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = '{old}'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', part.name, part.name || '_{suffix}');
        EXECUTE format('CREATE TABLE %I PARTITION OF {new} %s', part.name, part.bound);
    END LOOP;
END
$$;
"""

INDEXES_SQL = r"""
CREATE INDEX telemetry_log_chunks_first_ts ON telemetry_log_chunks (first_ts);
-- Chunks are written in bulk by the packing job, never updated: no pending list to merge on reads.
CREATE INDEX telemetry_log_chunks_text ON telemetry_log_chunks
    USING gin ((events || E'\n' || messages) gin_trgm_ops) WITH (fastupdate = off);
"""

# The rows of the old layout's chunks (migration 0007), hot-shaped.
OLD_ROWS = r"""
SELECT u.ts, u.id, c.level, c.service, c.domain, u.event, u.message,
       replace(u.trace_id::text, '-', '') AS trace_id, lpad(to_hex(u.span_id), 16, '0') AS span_id, u.attrs
FROM telemetry_log_chunks_0015 c
CROSS JOIN LATERAL unnest(c.ts, c.id, c.event, c.message, c.trace_ids, c.span_ids, c.attrs)
    AS u(ts, id, event, message, trace_id, span_id, attrs)
"""

REPACK_SQL = rf"""
INSERT INTO telemetry_log_events (id, ts, level, service, domain, event, message, trace_id, span_id, attrs)
SELECT id, ts, level, service, domain, event, message, trace_id, span_id, attrs FROM ({OLD_ROWS}) AS r
WHERE strpos(event, E'\x1e') > 0 OR strpos(message, E'\x1e') > 0
ON CONFLICT DO NOTHING;

INSERT INTO telemetry_log_chunks (first_ts, last_ts, level, row_count, trace_ids, ts, services, domains, events,
                                  messages, span_ids, attrs)
SELECT min(ts), max(ts), level, count(*),
       array_agg(trace_id::uuid ORDER BY service, domain, event, ts, message),
       array_agg(telemetry_log_ts_offset(ts) ORDER BY service, domain, event, ts, message),
       array_agg(service ORDER BY service, domain, event, ts, message),
       array_agg(domain ORDER BY service, domain, event, ts, message),
       string_agg(event, E'\x1e' ORDER BY service, domain, event, ts, message),
       string_agg(message, E'\x1e' ORDER BY service, domain, event, ts, message),
       array_agg(('x' || span_id)::bit(64)::bigint ORDER BY service, domain, event, ts, message),
       array_agg(attrs ORDER BY service, domain, event, ts, message)
FROM (SELECT *, (row_number() OVER (PARTITION BY date_trunc('hour', ts, 'UTC'), level
                                    ORDER BY service, domain, event, ts, message) - 1) / 3000 AS part
      FROM ({OLD_ROWS}) AS o
      WHERE strpos(event, E'\x1e') = 0 AND strpos(message, E'\x1e') = 0) AS r
GROUP BY date_trunc('hour', ts, 'UTC'), level, part;

DROP VIEW telemetry_log_events_all;
DROP TABLE telemetry_log_chunks_0015;
"""

VIEW_SQL = r"""
CREATE VIEW telemetry_log_events_all AS
SELECT e.ts,
       telemetry_log_row_id(e.ts, e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id,
                            e.attrs) AS id,
       e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs,
       e.ts AS chunk_first_ts, e.ts AS chunk_last_ts, NULL::bytea AS chunk_trace_bloom,
       e.event || E'\n' || e.message AS chunk_text, false AS chunk_packed, NULL::bytea AS chunk_digit_bloom
FROM telemetry_log_events e
UNION ALL
SELECT telemetry_log_ts(c.first_ts, u.ts),
       telemetry_log_row_id(telemetry_log_ts(c.first_ts, u.ts), c.level, u.service, u.domain, u.event, u.message,
                            replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs),
       c.level, u.service, u.domain, u.event, u.message,
       replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs,
       c.first_ts, c.last_ts, c.trace_bloom, c.events || E'\n' || c.messages, true, c.digit_bloom
FROM telemetry_log_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.services, c.domains, telemetry_split_joined(c.events, c.row_count),
                          telemetry_split_joined(c.messages, c.row_count), c.trace_ids, c.span_ids, c.attrs)
    AS u(ts, service, domain, event, message, trace_id, span_id, attrs);
COMMENT ON VIEW telemetry_log_events_all IS 'every stored log record: hot rows and packed chunks unnested';
"""

FORWARD_SQL = (
    FUNCTIONS_SQL
    + "ALTER TABLE telemetry_log_chunks RENAME TO telemetry_log_chunks_0015;\n"
    + "ALTER INDEX telemetry_log_chunks_first_ts RENAME TO telemetry_log_chunks_0015_first_ts;\n"
    + "ALTER INDEX telemetry_log_chunks_text RENAME TO telemetry_log_chunks_0015_text;\n"
    + NEW_TABLE_SQL
    + SWAP_PARTITIONS_SQL.format(old="telemetry_log_chunks_0015", new="telemetry_log_chunks", suffix="0015")
    + INDEXES_SQL
    + REPACK_SQL
    + VIEW_SQL
)

# Back to migration 0007's layout (with 0014's index and view): rows get fresh random ids.
OLD_TABLE_SQL = r"""
CREATE TABLE telemetry_log_chunks (
    first_ts  timestamptz   NOT NULL,
    last_ts   timestamptz   NOT NULL,
    level     text          NOT NULL,
    service   text          NOT NULL,
    domain    text          NOT NULL,
    row_count integer       NOT NULL,
    trace_ids uuid[]        NOT NULL,
    ts        timestamptz[] NOT NULL,
    id        uuid[]        NOT NULL,
    event     text[]        NOT NULL,
    message   text[]        NOT NULL,
    span_ids  bigint[]      NOT NULL,
    attrs     jsonb[]       NOT NULL,
    trace_bloom bytea       NULL
) PARTITION BY RANGE (first_ts);
CREATE TRIGGER telemetry_log_chunks_trace_bloom BEFORE INSERT ON telemetry_log_chunks
    FOR EACH ROW EXECUTE FUNCTION telemetry_chunk_trace_bloom();
"""

REVERSE_SQL = (
    "DROP VIEW telemetry_log_events_all;\n"
    + "ALTER TABLE telemetry_log_chunks RENAME TO telemetry_log_chunks_0016;\n"
    + "ALTER INDEX telemetry_log_chunks_first_ts RENAME TO telemetry_log_chunks_0016_first_ts;\n"
    + "ALTER INDEX telemetry_log_chunks_text RENAME TO telemetry_log_chunks_0016_text;\n"
    + OLD_TABLE_SQL
    + SWAP_PARTITIONS_SQL.format(old="telemetry_log_chunks_0016", new="telemetry_log_chunks", suffix="0016")
    + r"""
CREATE INDEX telemetry_log_chunks_first_ts ON telemetry_log_chunks (first_ts);
CREATE INDEX telemetry_log_chunks_text ON telemetry_log_chunks
    USING gin (upper(telemetry_chunk_text(event, message)) gin_trgm_ops) WITH (fastupdate = off);
INSERT INTO telemetry_log_chunks (first_ts, last_ts, level, service, domain, row_count, trace_ids, ts, id, event,
                                  message, span_ids, attrs)
SELECT min(ts), max(ts), level, service, domain, count(*), array_agg(trace_id ORDER BY ts, id),
       array_agg(ts ORDER BY ts, id), array_agg(id ORDER BY ts, id), array_agg(event ORDER BY ts, id),
       array_agg(message ORDER BY ts, id), array_agg(span_id ORDER BY ts, id), array_agg(attrs ORDER BY ts, id)
FROM (SELECT telemetry_log_ts(c.first_ts, u.ts) AS ts, gen_random_uuid() AS id, c.level, u.service, u.domain,
             u.event, u.message, u.trace_id, u.span_id, u.attrs
      FROM telemetry_log_chunks_0016 c
      CROSS JOIN LATERAL unnest(c.ts, c.services, c.domains, telemetry_split_joined(c.events, c.row_count),
                                telemetry_split_joined(c.messages, c.row_count), c.trace_ids, c.span_ids, c.attrs)
          AS u(ts, service, domain, event, message, trace_id, span_id, attrs)) AS r
GROUP BY date_trunc('hour', ts), level, service, domain;
DROP TABLE telemetry_log_chunks_0016;
CREATE VIEW telemetry_log_events_all AS
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
COMMENT ON VIEW telemetry_log_events_all IS 'every stored log record: hot rows and packed chunks unnested';
DROP FUNCTION telemetry_log_chunk_blooms();
DROP FUNCTION telemetry_digit_grams(text);
DROP FUNCTION telemetry_log_row_id(timestamptz, text, text, text, text, text, text, text, jsonb);
DROP FUNCTION telemetry_split_joined(text, integer);
DROP FUNCTION telemetry_log_ts(timestamptz, integer);
DROP FUNCTION telemetry_log_ts_offset(timestamptz);
"""
)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0015_error_group_hours")]

    operations = [
        migrations.RunSQL(FORWARD_SQL, REVERSE_SQL),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AddField(model_name="storedlogevent", name="chunk_packed",
                                field=models.BooleanField(default=False)),
            migrations.AddField(model_name="storedlogevent", name="chunk_digit_bloom",
                                field=models.BinaryField(null=True)),
        ]),
    ]
