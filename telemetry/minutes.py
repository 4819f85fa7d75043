"""The per-metric minute table `telemetry_metric_minutes`: every label set of a metric merged per sample minute.

One row per minute and key carries what the read side sums when it needs no per-label grouping: the sample
count, the counts and sums, the counter total (coalesce(value_sum, value_count) summed per sample, as the
samples reader does), and the merged histogram buckets. A key (`telemetry_metric_minute_keys`) is a metric,
a scope, a split and the bucket bounds; rows refer to it by `key_id`, so the few dozen keys are stored once
instead of on each of the ~45,000 rows a day at `heavy`. `split` keeps apart the one label value a panel
filters on (`SPLITS`: the status class of requests, the outcome of voice joins and ended sessions); '' for
every other metric. Bucket bounds are part of the key, so buckets of different layouts are never added
together ('{}' for samples without buckets). Bucket counts are int4 (`bucket_counts`); a minute with a count
beyond int4 keeps all of its counts as int8 in `bucket_counts_wide` instead, so nothing is ever cut.
Readers join the keys (command_center/selectors/metrics.py).

Rows are rebuilt, not accumulated: `telemetry_recompute_metric_minutes` recomputes the touched minutes from
the samples (DELETE, then INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE), so a re-run or a flush
that died half-way leaves the table exact. The metric flush calls it once per flush, in the transaction that
writes the samples (`record`); statement triggers on the samples run it for any other writer (late-sample
upserts outside a flush, factories, SQL seeding) unless the transaction deferred them to an explicit call
(`triggers_deferred`). Deleting samples does not touch the minutes: retention drops per-label samples sooner
than the minutes (`TELEMETRY_SAMPLE_RETENTION_DAYS`), and drops the minutes' own daily partitions at 30 days.
So the one exception to rebuilding: a flush writing a late sample of a minute whose per-label samples are
already gone (`samples_kept_from`) adds it to that minute instead, as a rebuild would lose the dropped ones.
Keys no row refers to any more are deleted by `prune_keys`.

The SQL functions are created by migration 0008 from `SPLITS`: a change to `SPLITS` needs a migration that
recreates them and recomputes the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction

from telemetry.contract import RETENTION_DAYS, Label, Metric
from telemetry.models import MetricSample

MINUTES_TABLE = "telemetry_metric_minutes"
SAMPLES_TABLE = MetricSample._meta.db_table
DEFER_SETTING = "telemetry.minutes_deferred"
SAMPLES_LOCK = "telemetry.metric_samples"  # the lock every sample writer holds while it writes
KEYS_TABLE = "telemetry_metric_minute_keys"
MINUTE_COLUMNS = ("ts", "key_id", "sample_rows", "value_count", "value_sum", "total", "bucket_counts",
                  "bucket_counts_wide")
KEY_COLUMNS = "key_id, ts"


@dataclass(frozen=True)
class Split:
    """The label a metric's minute rows are split on; `prefix_length` keeps only that many leading characters
    (the status class "5" of "503"), None the whole value."""

    label: Label
    prefix_length: int | None = None

    def value(self, labels: Mapping[str, str]) -> str:
        value = labels.get(self.label)
        if value is None:
            return ""
        return value if self.prefix_length is None else value[: self.prefix_length]

    def serves_prefix(self, prefix: str) -> bool:
        return self.prefix_length is not None and len(prefix) == self.prefix_length

    def serves_value(self) -> bool:
        return self.prefix_length is None


SPLITS: Mapping[str, Split] = {
    Metric.HTTP_REQUESTS_TOTAL: Split(Label.HTTP_STATUS_CODE, 1),
    Metric.VOICE_JOINS_TOTAL: Split(Label.OUTCOME),
    Metric.VOICE_SESSIONS_ENDED_TOTAL: Split(Label.OUTCOME),
}


def split_value(metric: str, labels: Mapping[str, str]) -> str:
    """The `split` of a sample of `metric` with `labels` ('' when the metric has no split or lacks the label)."""
    split = SPLITS.get(metric)
    return split.value(labels) if split else ""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _split_case_sql() -> str:
    branches = []
    for metric, split in SPLITS.items():
        value = f"labels ->> {_quote(split.label)}"
        if split.prefix_length is not None:
            value = f"left({value}, {split.prefix_length})"
        branches.append(f"WHEN {_quote(metric)} THEN coalesce({value}, '')")
    return "CASE metric_name " + " ".join(branches) + " ELSE '' END"


def _grouped_sql(source: str) -> str:
    """The minute aggregates of the samples `source`, one row per minute and key; the caller adds FROM/WHERE
    and `GROUP BY 1, 2, 3, 4, 5`."""
    return f"""SELECT {source}.ts, {source}.metric_name, {source}.scope,
               telemetry_metric_minute_split({source}.metric_name, {source}.labels) AS split,
               coalesce({source}.bucket_bounds, ARRAY[]::double precision[]) AS bounds,
               count(*) AS sample_rows, sum({source}.value_count) AS value_count,
               sum({source}.value_sum) AS value_sum, sum(coalesce({source}.value_sum, {source}.value_count)) AS total,
               telemetry_bucket_sum({source}.bucket_counts) AS counts"""


def _minute_rows_sql(grouped: str, keys: str = KEYS_TABLE) -> str:
    """The table's rows from `grouped` (columns of `_grouped_sql`): the key columns become their id in `keys`,
    the counts go to the int4 column when every count fits, else whole to the int8 one."""
    return f"""SELECT g.ts, k.id, g.sample_rows, g.value_count, g.value_sum, g.total,
               {_NARROW_SQL.format(counts="g.counts")}, {_WIDE_SQL.format(counts="g.counts")}
        FROM ({grouped}) AS g
        JOIN {keys} AS k ON k.metric_name = g.metric_name AND k.scope = g.scope AND k.split = g.split
                         AND k.bounds = g.bounds"""


def _insert_minutes_sql(grouped: str) -> str:
    """INSERT the minute rows of `grouped`, adding the keys first seen. The caller holds `SAMPLES_LOCK`, taken
    before this statement started: every key any writer added is then visible to it, or added by it."""
    return f"""WITH grouped AS MATERIALIZED ({grouped}),
    added AS (
        INSERT INTO {KEYS_TABLE} (metric_name, scope, split, bounds)
        SELECT DISTINCT metric_name, scope, split, bounds FROM grouped
        ON CONFLICT (metric_name, scope, split, bounds) DO NOTHING
        RETURNING id, metric_name, scope, split, bounds
    ),
    known AS (SELECT * FROM added UNION ALL SELECT id, metric_name, scope, split, bounds FROM {KEYS_TABLE})
    INSERT INTO {MINUTES_TABLE} ({", ".join(MINUTE_COLUMNS)})
    {_minute_rows_sql("SELECT * FROM grouped", "known")}"""


_NARROW_SQL = "CASE WHEN telemetry_fits_int4({counts}) THEN {counts}::integer[] END"
_WIDE_SQL = "CASE WHEN NOT telemetry_fits_int4({counts}) THEN {counts} END"
_TOUCHED_SAMPLES_SQL = f"""
        FROM {SAMPLES_TABLE} AS s
        JOIN (SELECT DISTINCT * FROM unnest(metric_names, scopes, minutes) AS u(metric_name, scope, ts)) AS k
          ON s.metric_name = k.metric_name AND s.scope = k.scope AND s.ts = k.ts
        WHERE s.ts >= low AND s.ts <= high"""
_UPDATE_SQL = ", ".join(f"{column} = EXCLUDED.{column}" for column in MINUTE_COLUMNS[2:])


def schema_sql() -> str:
    """The keys, the table, its default partition, the functions and the triggers (migration 0008).

    Columns are ordered widest-aligned first so the row carries no alignment padding."""
    return f"""
CREATE TABLE {KEYS_TABLE} (
    id          integer            GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    metric_name text               NOT NULL,
    scope       text               NOT NULL,
    split       text               NOT NULL,
    bounds      double precision[] NOT NULL,
    UNIQUE (metric_name, scope, split, bounds)
);

CREATE TABLE {MINUTES_TABLE} (
    ts                 timestamptz      NOT NULL,
    value_count        bigint           NULL,
    value_sum          double precision NULL,
    total              double precision NULL,
    key_id             integer          NOT NULL,
    sample_rows        integer          NOT NULL,
    bucket_counts      integer[]        NULL,
    bucket_counts_wide bigint[]         NULL
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX {MINUTES_TABLE}_key ON {MINUTES_TABLE} ({KEY_COLUMNS});
CREATE TABLE {MINUTES_TABLE}_default PARTITION OF {MINUTES_TABLE} DEFAULT;

-- STRICT: rows without buckets (most of them) skip the call.
CREATE FUNCTION telemetry_fits_int4(counts bigint[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(bool_and(c BETWEEN -2147483648 AND 2147483647), true) FROM unnest(counts) AS c
$$;

CREATE FUNCTION telemetry_metric_minute_split(metric_name text, labels jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {_split_case_sql()} $$;

CREATE FUNCTION telemetry_recompute_metric_minutes(metric_names text[], scopes text[], minutes timestamptz[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    low timestamptz;
    high timestamptz;
    written bigint;
BEGIN
    SELECT min(m), max(m) INTO low, high FROM unnest(minutes) AS m;
    IF low IS NULL THEN
        RETURN 0;
    END IF;
    -- Writers of samples hold this lock until they commit, so the samples read below are all committed
    -- ones and no other transaction rebuilds the same minutes concurrently.
    PERFORM pg_advisory_xact_lock(hashtext({_quote(SAMPLES_LOCK)}));
    DELETE FROM {MINUTES_TABLE} AS t
    USING {KEYS_TABLE} AS k, unnest(metric_names, scopes, minutes) AS u(metric_name, scope, ts)
    WHERE t.ts >= low AND t.ts <= high AND t.key_id = k.id
      AND k.metric_name = u.metric_name AND k.scope = u.scope AND t.ts = u.ts;
    {_insert_minutes_sql(_grouped_sql("s") + _TOUCHED_SAMPLES_SQL + " GROUP BY 1, 2, 3, 4, 5")}
    ON CONFLICT ({KEY_COLUMNS}) DO UPDATE SET {_UPDATE_SQL};
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

CREATE FUNCTION telemetry_metric_minutes_after_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting({_quote(DEFER_SETTING)}, true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM telemetry_recompute_metric_minutes(array_agg(metric_name), array_agg(scope), array_agg(ts))
    FROM (SELECT DISTINCT metric_name, scope, ts FROM changed_rows) AS touched;
    RETURN NULL;
END
$$;
CREATE TRIGGER telemetry_metric_samples_minutes_inserted AFTER INSERT ON {SAMPLES_TABLE}
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_metric_minutes_after_write();
CREATE TRIGGER telemetry_metric_samples_minutes_updated AFTER UPDATE ON {SAMPLES_TABLE}
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_metric_minutes_after_write();
CREATE FUNCTION telemetry_clear_metric_minutes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {MINUTES_TABLE};
    RETURN NULL;
END
$$;
CREATE TRIGGER telemetry_metric_samples_minutes_truncated AFTER TRUNCATE ON {SAMPLES_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_clear_metric_minutes();
"""


# The triggers and functions; both layouts of the table (migrations 0004 and 0008) name them alike.
DROP_FUNCTIONS_SQL = f"""
DROP TRIGGER telemetry_metric_samples_minutes_inserted ON {SAMPLES_TABLE};
DROP TRIGGER telemetry_metric_samples_minutes_updated ON {SAMPLES_TABLE};
DROP TRIGGER telemetry_metric_samples_minutes_truncated ON {SAMPLES_TABLE};
DROP FUNCTION telemetry_metric_minutes_after_write();
DROP FUNCTION telemetry_clear_metric_minutes();
DROP FUNCTION telemetry_recompute_metric_minutes(text[], text[], timestamptz[]);
DROP FUNCTION telemetry_metric_minute_split(text, jsonb);
"""

DROP_SCHEMA_SQL = DROP_FUNCTIONS_SQL + f"""
DROP TABLE {MINUTES_TABLE};
DROP TABLE {KEYS_TABLE};
DROP FUNCTION telemetry_fits_int4(bigint[]);
"""


@contextmanager
def triggers_deferred(cursor) -> Iterator[None]:
    """Inside the block, sample writes of this transaction leave the minutes to an explicit `recompute`.

    The setting is transaction-local: an error inside the block rolls it back with the (sub)transaction."""
    cursor.execute("SELECT set_config(%s, 'on', true)", [DEFER_SETTING])
    yield
    cursor.execute("SELECT set_config(%s, 'off', true)", [DEFER_SETTING])


def recompute(cursor, keys: Iterable[tuple[str, str, datetime]]) -> int:
    """Rebuild the minute rows of the given (metric, scope, minute) keys from the samples; returns rows written."""
    unique = sorted(set(keys), key=lambda key: (key[2], key[0], key[1]))
    if not unique:
        return 0
    cursor.execute(
        "SELECT telemetry_recompute_metric_minutes(%s::text[], %s::text[], %s::timestamptz[])",
        [[key[0] for key in unique], [key[1] for key in unique], [key[2] for key in unique]],
    )
    return cursor.fetchone()[0]


def samples_kept_from(now: datetime) -> datetime | None:
    """The first hour whose per-label samples retention keeps; None when they are kept as long as the minutes."""
    days = settings.TELEMETRY_SAMPLE_RETENTION_DAYS
    if days >= RETENTION_DAYS:
        return None
    return (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


def record(cursor, samples: Sequence[Mapping[str, Any]], now: datetime) -> int:
    """Bring the minutes of freshly written samples up to date (inside the flush's transaction).

    Minutes still holding their per-label samples are rebuilt from them; a late sample of an older minute is
    added to what the minute holds, as rebuilding it from the samples left would lose the dropped ones."""
    kept_from = samples_kept_from(now)
    recent = [sample for sample in samples if kept_from is None or sample["ts"] >= kept_from]
    older = [sample for sample in samples if kept_from is not None and sample["ts"] < kept_from]
    written = recompute(cursor, ((sample["metric_name"], sample["scope"], sample["ts"]) for sample in recent))
    return written + (_add(cursor, older) if older else 0)


_ADDED_ROW_SQL = """SELECT %s::timestamptz AS ts, %s::text AS metric_name, %s::text AS scope, %s::text AS split,
       %s::double precision[] AS bounds, %s::integer AS sample_rows, %s::bigint AS value_count,
       %s::double precision AS value_sum, %s::double precision AS total, %s::bigint[] AS counts"""


def _add(cursor, samples: Sequence[Mapping[str, Any]]) -> int:
    rows: dict[tuple, list] = {}
    for sample in samples:
        bounds = tuple(float(bound) for bound in sample.get("bucket_bounds") or ())
        key = (sample["ts"], sample["metric_name"], sample["scope"], split_value(sample["metric_name"],
                                                                               sample["labels"]), bounds)
        row = rows.setdefault(key, [0, None, None, None, None])
        count, total, counts = sample.get("value_count"), sample.get("value_sum"), sample.get("bucket_counts")
        row[0] += 1
        row[1] = _plus(row[1], count)
        row[2] = _plus(row[2], total)
        row[3] = _plus(row[3], total if total is not None else count)
        if counts is not None:
            row[4] = [int(c) for c in counts] if row[4] is None else [a + int(b) for a, b in zip(row[4], counts,
                                                                                               strict=True)]
    # The lock keeps `prune_keys` from deleting a key between storing it and the INSERT joining it.
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [SAMPLES_LOCK])
    _store_keys(cursor, {key[1:] for key in rows})
    merged = (f"CASE WHEN {_stored_counts('t')} IS NULL THEN {_stored_counts('EXCLUDED')}"
              f" WHEN {_stored_counts('EXCLUDED')} IS NULL THEN {_stored_counts('t')}"
              f" ELSE telemetry_bucket_add({_stored_counts('t')}, {_stored_counts('EXCLUDED')}) END")
    cursor.executemany(
        f"""INSERT INTO {MINUTES_TABLE} AS t ({", ".join(MINUTE_COLUMNS)})
            {_minute_rows_sql(_ADDED_ROW_SQL)}
            ON CONFLICT ({KEY_COLUMNS}) DO UPDATE SET
                sample_rows = t.sample_rows + EXCLUDED.sample_rows,
                value_count = {_plus_sql("value_count")},
                value_sum = {_plus_sql("value_sum")},
                total = {_plus_sql("total")},
                bucket_counts = {_NARROW_SQL.format(counts=merged)},
                bucket_counts_wide = {_WIDE_SQL.format(counts=merged)}""",
        [[*key[:4], list(key[4]), *row] for key, row in rows.items()],
    )
    return len(rows)


def _store_keys(cursor, keys: Iterable[tuple[str, str, str, tuple[float, ...]]]) -> None:
    cursor.executemany(
        f"""INSERT INTO {KEYS_TABLE} (metric_name, scope, split, bounds) VALUES (%s, %s, %s, %s::double precision[])
            ON CONFLICT (metric_name, scope, split, bounds) DO NOTHING""",
        [[metric, scope, split, list(bounds)] for metric, scope, split, bounds in sorted(keys)],
    )


def _stored_counts(alias: str) -> str:
    """The bucket counts of a minute row as bigint[], from whichever column holds them."""
    return f"coalesce({alias}.bucket_counts::bigint[], {alias}.bucket_counts_wide)"


def _plus(a, b):
    if a is None:
        return b
    return a if b is None else a + b


def _plus_sql(column: str) -> str:
    return (f"CASE WHEN t.{column} IS NULL THEN EXCLUDED.{column} WHEN EXCLUDED.{column} IS NULL THEN t.{column}"
            f" ELSE t.{column} + EXCLUDED.{column} END")


def backfill(using: str = "default", work_mem: str = "256MB") -> int:
    """Rebuild the whole table from the samples (after a bulk load with triggers off)."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [SAMPLES_LOCK])
        cursor.execute(f"DELETE FROM {MINUTES_TABLE}")
        cursor.execute(
            _insert_minutes_sql(_grouped_sql("s") + f" FROM {SAMPLES_TABLE} AS s GROUP BY 1, 2, 3, 4, 5")
        )
        return cursor.rowcount


def prune_keys(using: str = "default") -> int:
    """Delete the keys no minute row refers to any more (after retention dropped minutes); returns how many.
    Key ids are never reused, so a reader never maps an id to another key."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [SAMPLES_LOCK])
        # One (key_id, ts) index probe per key and partition, instead of reading every minute row.
        cursor.execute(
            f"""DELETE FROM {KEYS_TABLE} AS k
                WHERE NOT EXISTS (SELECT FROM {MINUTES_TABLE} AS m WHERE m.key_id = k.id)"""
        )
        return cursor.rowcount
