"""The filters every read of stored logs and spans goes through (the `*_all` views of migration 0007).

Most rows are packed: one chunk per hour and segment holds them as arrays, and the views unnest them.
A condition on `ts` alone is checked only after unnesting, i.e. after every chunk was unpacked. These
filters add the matching conditions on the chunk itself, which PostgreSQL checks before unnesting (and,
on `chunk_first_ts`, the chunk tables' partition key, when it picks the partitions to read). For a hot
row they are conditions on its own columns.

A trace is looked for through the hour filter of migrations 0017 and 0021 (one block of a Bloom filter per hour:
`hour_probes`), then the trace ids of the span or log chunks of its candidate hours (`chunks_of_trace`); a trace's spans
and log records are then read from those chunks' positions only (`spans_of_trace` and `logs_of_trace`, migrations
0025 and 0026). A search
term is looked for with the trigram index over the text of each log chunk (migration 0014).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import connections
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Expression,
    F,
    Func,
    Model,
    Q,
    QuerySet,
    Value,
)
from django.db.models.sql.datastructures import BaseTable

from kaiku_ops.db_routers import read_alias
from telemetry.models import StoredLogLookup, StoredSpan, StoredTraceLookup
from telemetry.packing import CHUNK_SPAN, LOG_CHUNKS, TRACE_CHUNKS, TRACE_HOURS

# Where the Bloom filter's three probes (migration 0007) take 32 bits of the md5 hex digest of a trace id.
BLOOM_PROBES = (0, 8, 16)
# The hour filter (migration 0017): of the md5 digest of a trace id, the first 7 bits pick the block (of 128) and
# the next seven 12-bit slices the bits in it (of 4096).
HOUR_BLOCK_BITS = 7
HOUR_PROBE_BITS = 12
HOUR_PROBES = 7
HOUR = timedelta(hours=1)


def rows(model: type[Model]) -> QuerySet:
    """All rows of StoredLogEvent or StoredTraceEntry, from the read database, without the chunk fields
    (filtered on, never read: a packed row's chunk bounds and, for logs, its chunk's text and digit filter)."""
    chunk_fields = [field.name for field in model._meta.concrete_fields if field.name.startswith("chunk_")]
    return model.objects.using(read_alias()).defer(*chunk_fields)


def _chunk_bounds(start: datetime, end: datetime) -> tuple[datetime, datetime, datetime]:
    # A chunk overlaps [start, end) when it begins before `end` and ends at or after `start`; it begins at
    # most CHUNK_SPAN before its end, which bounds `chunk_first_ts` from below as well.
    return start - CHUNK_SPAN, end, start


def window(start: datetime, end: datetime) -> Q:
    """Rows with start <= ts < end, reading only the chunks that overlap the window."""
    first_from, first_before, last_from = _chunk_bounds(start, end)
    return Q(
        ts__gte=start,
        ts__lt=end,
        chunk_first_ts__gte=first_from,
        chunk_first_ts__lt=first_before,
        chunk_last_ts__gte=last_from,
    )


def window_sql(start: datetime, end: datetime) -> tuple[str, list[datetime]]:
    """`window` for raw SQL over a view: the condition and its parameters."""
    first_from, first_before, last_from = _chunk_bounds(start, end)
    return (
        "ts >= %s AND ts < %s AND chunk_first_ts >= %s AND chunk_first_ts < %s AND chunk_last_ts >= %s",
        [start, end, first_from, first_before, last_from],
    )


def bloom_hashes(trace_id: uuid.UUID) -> list[int]:
    """The three hashes a chunk Bloom filter (today: of digit 5-grams) was built with for `trace_id` (migration 0007's
    `('x' || substr(md5(id::text), p, 8))::bit(32)::bigint`), for `telemetry_bloom_has` (migration 0014)."""
    digest = hashlib.md5(str(trace_id).encode()).hexdigest()  # noqa: S324 - the filter's hash, not a secret
    return [int(digest[probe:probe + 8], 16) for probe in BLOOM_PROBES]


def hour_probes(trace_id: uuid.UUID) -> tuple[int, list[int]]:
    """The block of the hour filter that holds `trace_id` and the bits it sets in it (migration 0017's
    `telemetry_trace_hour_key`)."""
    digest = int(hashlib.md5(str(trace_id).encode()).hexdigest(), 16)  # noqa: S324 - the filter's hash
    rest = 128 - HOUR_BLOCK_BITS
    probes = [(digest >> (rest - HOUR_PROBE_BITS * (i + 1))) & (2**HOUR_PROBE_BITS - 1) for i in range(HOUR_PROBES)]
    return digest >> rest, probes


def of_trace(trace_id: str, start: datetime | None = None, end: datetime | None = None) -> Q:
    """Rows of one trace (32 lower-case hex digits, as stored), hot or packed, for any of the views: unpacking only
    the chunks that hold it: of the hours whose filter may hold the trace (read for the hours of [start, end) when
    given, else all), the chunks whose trace ids do."""
    try:
        packed_id = uuid.UUID(hex=trace_id)
    except ValueError:
        # Not a trace id any stored row can have: still a valid (empty) answer, never an error.
        return Q(trace_id=trace_id, ts__isnull=True)
    return Q(trace_id=trace_id) & Q(_OfTrace(packed_id, start, end))


class _OfTrace(Expression):
    """The chunk condition of `of_trace`, which depends on the view it filters: known once a query resolves it."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, trace_id: uuid.UUID, start: datetime | None, end: datetime | None):
        super().__init__()
        self.trace_id, self.start, self.end = trace_id, start, end

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        spans = issubclass(query.model, StoredSpan)
        packed = chunks_of_trace(TRACE_CHUNKS if spans else LOG_CHUNKS, self.trace_id, self.start, self.end)
        condition = Q(chunk_packed=False) | Q(chunk_first_ts__in=packed) if packed else Q(chunk_packed=False)
        if spans:
            condition &= Q(chunk_trace_uuid=self.trace_id)
        return condition.resolve_expression(query, allow_joins, reuse, summarize, for_save)


def spans_of_trace(trace_id: str, start: datetime | None = None, end: datetime | None = None,
                   using: str | None = None) -> QuerySet:
    """The stored spans of one trace (32 lower-case hex digits), hot or packed, as a queryset of StoredTraceLookup to
    filter further: of the chunks that hold it in the hours of [start, end) (all hours when not given), only the
    positions of its spans are read (migration 0025)."""
    return _of_trace(StoredTraceLookup, trace_id, start, end, using)


def logs_of_trace(trace_id: str, start: datetime | None = None, end: datetime | None = None,
                  using: str | None = None) -> QuerySet:
    """The stored log records of one trace, as `spans_of_trace` has its spans: a queryset of StoredLogLookup
    (migration 0026)."""
    return _of_trace(StoredLogLookup, trace_id, start, end, using)


def _of_trace(model: type[Model], trace_id: str, start: datetime | None, end: datetime | None,
              using: str | None) -> QuerySet:
    found = rows(model) if using is None else rows(model).using(using)
    try:
        packed_id = uuid.UUID(hex=trace_id)
    except ValueError:
        return found.none()  # not a trace id any stored row can have: still a valid (empty) answer, never an error
    chunk_starts = tuple(chunks_of_trace(_LOOKUP_CHUNKS[model], packed_id, start, end, using))
    query = found.query
    alias = query.get_initial_alias()
    query.alias_map[alias] = _OfTraceTable(query.alias_map[alias].table_name, alias, (model, packed_id, chunk_starts))
    return found.filter(trace_id=trace_id)


# The chunks each lookup model's function reads (migrations 0025 and 0026).
_LOOKUP_CHUNKS = {StoredTraceLookup: TRACE_CHUNKS, StoredLogLookup: LOG_CHUNKS}


class _OfTraceTable(BaseTable):
    """A lookup model's table: FROM its function of (trace, chunk_starts) under the model's table name (Django has no
    table functions). The arguments go as parameters, which PostgreSQL gets as constants (client-side binding): it
    inlines the SQL function and plans only the chunk partitions of `chunk_starts`."""

    def __init__(self, table_name: str, alias: str, arguments: tuple[type[Model], uuid.UUID, tuple[datetime, ...]]):
        super().__init__(table_name, alias)
        self.arguments = arguments

    def as_sql(self, compiler, connection):
        sql, params = of_trace_sql(*self.arguments)
        return f"{sql} {compiler.quote_name_unless_alias(self.table_alias)}", params

    def relabeled_clone(self, change_map):
        return self.__class__(self.table_name, change_map.get(self.table_alias, self.table_alias), self.arguments)

    @property
    def identity(self):
        return self.__class__, self.table_name, self.table_alias, self.arguments


def of_trace_sql(model: type[Model], trace_id: uuid.UUID, chunk_starts: Iterable[datetime]) -> tuple[str, list]:
    """The call of the function of StoredTraceLookup or StoredLogLookup that reads `trace_id`'s rows, hot and of the
    chunks that begin at `chunk_starts` (`chunks_of_trace`), for a FROM clause: its SQL and parameters."""
    return f"{model._meta.db_table}(%s::uuid, %s::timestamptz[])", [trace_id, list(chunk_starts)]


def hours_of_trace(trace_id: uuid.UUID, start: datetime | None = None, end: datetime | None = None,
                   using: str | None = None) -> list[datetime]:
    """The UTC hours whose filter may hold `trace_id` (migrations 0017 and 0021: span and log chunks alike), of the
    hours of chunks that may overlap [start, end) when given, else of all: one index range of one block of the filter,
    a row an hour."""
    block, probes = hour_probes(trace_id)
    hours_sql, params = f"SELECT hour FROM {TRACE_HOURS} WHERE block = %s", [block]
    if start is not None:
        hours_sql += " AND hour >= %s"
        params.append((start - CHUNK_SPAN).astimezone(UTC).replace(minute=0, second=0, microsecond=0))
    if end is not None:
        hours_sql += " AND hour < %s"
        params.append(end)
    hours_sql += " AND (" + " & ".join(["get_bit(bits, %s)"] * len(probes)) + ") = 1 ORDER BY hour"
    with connections[using or read_alias()].cursor() as cursor:
        cursor.execute(hours_sql, [*params, *probes])
        return [hour for (hour,) in cursor.fetchall()]


def chunks_of_trace(chunks: str, trace_id: uuid.UUID, start: datetime | None = None, end: datetime | None = None,
                    using: str | None = None) -> list[datetime]:
    """The `first_ts` of the chunks (of TRACE_CHUNKS or LOG_CHUNKS) that hold `trace_id`, of the hours of
    [start, end) when given, else of all (for `of_trace`, over the views).

    Two small queries whose answers the look-up then names as constants: the hours whose filter may hold the trace
    (`hours_of_trace`), then the chunks of those hours whose trace ids do. With constants PostgreSQL reads only the
    chunk partitions of those hours and plans only those; as one query with a subquery it planned every partition of
    the window, which over 30 days cost more than the look-up itself."""
    hours = hours_of_trace(trace_id, start, end, using)
    if not hours:
        return []
    in_hours = " OR ".join(["(first_ts >= %s AND first_ts < %s)"] * len(hours))
    with connections[using or read_alias()].cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT first_ts FROM {chunks} WHERE ({in_hours}) AND trace_ids @> %s",
                       [*(bound for hour in hours for bound in (hour, hour + HOUR)), [trace_id]])
        return sorted(first_ts for (first_ts,) in cursor.fetchall())


def containing(search: str) -> Q:
    """Log rows whose event or message contains `search` (case-insensitive: ILIKE), unpacking only the chunks
    whose text holds it. `chunk_text` is every event and message of a chunk as stored, so it holds whatever a
    row holds: its trigram index answers the same condition first, together with the window's bounds on the
    chunks' start (migration 0022), so only the window's chunks that may hold the term have their text read
    (~1 ms a chunk); a term without letters needs no case folding (a plain LIKE: the cheaper check). A term with
    five digits in a row also narrows the chunks to those that may hold all its digit 5-grams, which trigrams of
    digits do not: they are in nearly every chunk that prints numbers (the chunk's Bloom filter of its 5-grams, read
    for each chunk of the window). Hot rows are checked row by row only."""
    pattern = "%" + _like_escaped(search) + "%"
    grams = digit_grams(search)
    if grams:
        # Only the filters: PostgreSQL would check the (cheap-looking) LIKE over each chunk's whole text first.
        chunk = Q()
        for gram in grams:
            hashes = [Value(value, BigIntegerField()) for value in bloom_hashes(digit_gram_id(gram))]
            chunk &= Q(BloomHas(F("chunk_digit_bloom"), *hashes))
    elif _caseless(search):
        chunk = Q(chunk_packed=False) | Q(chunk_text__contains=search)
    else:
        chunk = Q(chunk_packed=False) | Q(ILike(F("chunk_text"), Value(pattern)))
    if _caseless(search):  # the same rows as ILIKE, without folding case
        return chunk & (Q(event__contains=search) | Q(message__contains=search))
    return chunk & (Q(ILike(F("event"), Value(pattern))) | Q(ILike(F("message"), Value(pattern))))


# Runs of this many digits are indexed (migration 0016's telemetry_digit_grams).
DIGIT_GRAM = 5
_DIGIT_RUN = re.compile(f"[0-9]{{{DIGIT_GRAM},}}")


def digit_grams(text: str) -> list[int]:
    """Every run of DIGIT_GRAM ASCII digits in `text`, as integers (as telemetry_digit_grams writes them)."""
    return sorted({int(run[i:i + DIGIT_GRAM]) for run in _DIGIT_RUN.findall(text)
                   for i in range(len(run) - DIGIT_GRAM + 1)})


def digit_gram_id(gram: int) -> uuid.UUID:
    """The id a digit 5-gram has in a log chunk's `digit_bloom` (migration 0016: `md5(gram::text)::uuid`)."""
    return uuid.UUID(hashlib.md5(str(gram).encode()).hexdigest())  # noqa: S324 - the filter's hash, not a secret


def _caseless(text: str) -> bool:
    # ASCII without letters: no character of it has another case, and none that PostgreSQL case-folds becomes one.
    return text.isascii() and not any(character.isalpha() for character in text)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ILike(Func):
    """SQL `expression ILIKE pattern` (pattern escaped with backslashes, PostgreSQL's default)."""

    arg_joiner = " ILIKE "
    template = "(%(expressions)s)"
    output_field = BooleanField()


class BloomHas(Func):
    """SQL `telemetry_bloom_has(bloom, h1, h2, h3)` (migration 0014): inlined into the scan of the chunks."""

    function = "telemetry_bloom_has"
    output_field = BooleanField()
