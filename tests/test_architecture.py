"""The layering rules, checked on the source: `telemetry.queries` is the only door from `command_center` to
storage, and `telemetry` never imports `command_center`.

What counts as storage knowledge is derived from the write side itself, so a new table, view, SQL function
or column is covered without editing this file:
- relations: every telemetry model's `_meta.db_table`, every table, view, function and aggregate a
  telemetry migration creates, and the module-level `*_TABLE`/`*_VIEW`/`*_CHUNKS` constants of telemetry's
  modules (subpackages included);
- columns: the column tuples of telemetry/storage.py and telemetry/minutes.py, the columns of every telemetry
  model and, from the migrated database's catalog, the columns of every one of those relations (tables without
  a model: chunks, span aggregates, error groups, rollups), less the read API's own vocabulary (the field names
  of the public dataclasses in telemetry/queries: a `SpanRecord` has a `domain`, and a panel may say so).

command_center code (docstrings and comments aside) must name no relation anywhere, no column inside SQL text
or an ORM lookup (`filter(ts__gte=...)`, `order_by("-ts")`, `F("labels")`, ...), and import no storage module of
telemetry (models, minutes, packing, rollups, partitions, storage, retention, service_instances).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
from functools import cache
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection

from telemetry import minutes, storage

ROOT = Path(__file__).resolve().parent.parent
READ_SIDE = ROOT / "command_center"
WRITE_SIDE = ROOT / "telemetry"
STORAGE_MODULES = frozenset({
    "telemetry.models", "telemetry.minutes", "telemetry.packing", "telemetry.rollups", "telemetry.partitions",
    "telemetry.storage", "telemetry.retention", "telemetry.service_instances",
})
# Modules that still read storage themselves, with what they still know; each must be moved behind
# telemetry.queries and then removed from here (the last test fails while an entry is no longer needed).
NOT_YET_BEHIND_THE_READ_API: dict[str, str] = {}
_CREATED = re.compile(
    r"""CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+|UNLOGGED\s+|TEMP(?:ORARY)?\s+)?"""
    r"""(?:TABLE|VIEW|FUNCTION|AGGREGATE)\s+(?:IF\s+NOT\s+EXISTS\s+)?"?(?!IF\b)(\w+)""",
    re.IGNORECASE,
)
_CONSTANT_NAME = re.compile(r"_(TABLE|VIEW|CHUNKS)$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SQL = re.compile(r"\b(SELECT|FROM|WHERE|JOIN|GROUP BY|ORDER BY|INSERT|UPDATE|DELETE)\b")
# ORM calls whose string arguments are field names, and those whose keyword names are lookups.
_FIELD_ARGUMENT_CALLS = frozenset({"order_by", "values", "values_list", "defer", "only", "F", "distinct"})
_LOOKUP_KEYWORD_CALLS = frozenset({"filter", "exclude", "get", "Q", "update", "create", "get_or_create"})


def _telemetry_models():
    return apps.get_app_config("telemetry").get_models()


@cache
def relations() -> frozenset[str]:
    names = {model._meta.db_table for model in _telemetry_models()}
    for migration in (WRITE_SIDE / "migrations").glob("*.py"):
        names.update(_CREATED.findall(migration.read_text()))
    for module in WRITE_SIDE.rglob("*.py"):
        if "migrations" in module.parts:
            continue
        for node in ast.parse(module.read_text()).body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)):
                for target in node.targets:
                    if isinstance(target, ast.Name) and _CONSTANT_NAME.search(target.id):
                        names.add(node.value.value)
    return frozenset(name.lower() for name in names)


@cache
def read_api_vocabulary() -> frozenset[str]:
    import telemetry.queries as package

    names: set[str] = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, value in inspect.getmembers(module, dataclasses.is_dataclass):
            if value.__module__ == module.__name__ and not value.__name__.startswith("_"):
                names.update(field.name for field in dataclasses.fields(value))
    return frozenset(names)


@cache
def catalog_columns() -> frozenset[str]:
    """The columns the migrated database gives telemetry's relations (those without a model included)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT attname FROM pg_attribute JOIN pg_class ON pg_class.oid = attrelid"
                       " WHERE relname = ANY(%s) AND attnum > 0 AND NOT attisdropped", [sorted(relations())])
        return frozenset(row[0] for row in cursor.fetchall())


@cache
def columns() -> frozenset[str]:
    names = {
        *storage.LOG_EVENT_COLUMNS, *storage.TRACE_COLUMNS, *storage.VOICE_SESSION_COLUMNS,
        *storage.VOICE_METRIC_COLUMNS, *storage.SAMPLE_COLUMNS, *minutes.MINUTE_COLUMNS, *catalog_columns(),
    }
    for model in _telemetry_models():
        names.update(field.column for field in model._meta.concrete_fields)
    return frozenset(names - read_api_vocabulary())


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return node.func.id if isinstance(node.func, ast.Name) else None


def storage_knowledge(path: Path) -> list[str]:
    """What `path` knows of telemetry's storage: one line per finding."""
    tree = ast.parse(path.read_text())
    skipped = _docstrings(tree)
    found = []

    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name

    def note(node: ast.AST, what: str) -> None:
        found.append(f"{where}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            words = set(_WORD.findall(node.value))
            for word in sorted(words):
                if word.lower() in relations():
                    note(node, f"names the relation {word}")
            if _SQL.search(node.value):
                for word in sorted(words & columns()):
                    note(node, f"names the column {word} in SQL")
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name in _FIELD_ARGUMENT_CALLS:
                for argument in node.args:
                    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                        field = argument.value.lstrip("-").split("__")[0]
                        if field in columns():
                            note(node, f"{name}() names the column {field}")
            if name in _LOOKUP_KEYWORD_CALLS:
                for keyword in node.keywords:
                    if keyword.arg and keyword.arg.split("__")[0] in columns():
                        note(node, f"{name}() looks up the column {keyword.arg.split('__')[0]}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            )
            for module in modules:
                if module in STORAGE_MODULES:
                    note(node, f"imports {module}")
    return found


def _read_side_files() -> list[Path]:
    return sorted(path for path in READ_SIDE.rglob("*.py") if "migrations" not in path.parts)


@pytest.mark.django_db
def test_the_derived_lists_cover_the_storage_they_describe():
    assert {"telemetry_metric_samples", "telemetry_metric_minutes", "telemetry_metric_minute_keys",
            "telemetry_trend_rollups_hourly", "telemetry_trace_index_all", "telemetry_log_chunks",
            "connection_metrics", "telemetry_bloom_has", "telemetry_chunk_text", "telemetry_bucket_sum",
            "telemetry_span_minutes", "telemetry_error_group_hours", "telemetry_metric_points_pending"} <= relations()
    assert {"bucket_counts_wide", "sample_rows", "key_id", "chunk_first_ts", "chunk_digit_bloom", "chunk_text",
            "labels", "value_sum"} <= columns()
    # Columns of tables without a model come from the catalog: span aggregates, error groups, chunks.
    assert {"example_message", "fingerprint", "row_count", "trace_ids", "point_time_ns"} <= columns()
    assert "domain" in read_api_vocabulary() and "domain" not in columns()


@pytest.mark.django_db
def test_command_center_reads_storage_only_through_telemetry_queries():
    findings = [
        finding
        for path in _read_side_files()
        if str(path.relative_to(ROOT)) not in NOT_YET_BEHIND_THE_READ_API
        for finding in storage_knowledge(path)
    ]
    assert findings == [], "command_center must ask telemetry.queries instead:\n" + "\n".join(findings)


@pytest.mark.django_db
def test_the_modules_not_yet_behind_the_read_api_are_listed_only_while_they_need_it():
    no_longer = [name for name in NOT_YET_BEHIND_THE_READ_API if not storage_knowledge(ROOT / name)]
    assert no_longer == [], f"remove from NOT_YET_BEHIND_THE_READ_API: {no_longer}"


@pytest.mark.django_db
def test_the_scan_finds_storage_knowledge(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may name telemetry_metric_samples."""\n'
        "from telemetry.models import MetricSample\n"
        'SQL = "SELECT bucket_counts_wide FROM x"\n'
        'rows = MetricSample.objects.filter(key_id=1).order_by("-chunk_first_ts")\n'
        'TABLE = "telemetry_metric_minutes"\n'
        'VIEW = "telemetry_trace_index_all"\n'
        'HOURS = "SELECT example_message FROM groups"\n'
    )
    assert sorted(finding.split(": ", 1)[1] for finding in storage_knowledge(sample)) == [
        "filter() looks up the column key_id",
        "imports telemetry.models",
        "names the column bucket_counts_wide in SQL",
        "names the column example_message in SQL",
        "names the relation telemetry_metric_minutes",
        "names the relation telemetry_trace_index_all",
        "order_by() names the column chunk_first_ts",
    ]


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and _call_name(node) in {"import_module", "__import__"} and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def test_telemetry_never_imports_command_center():
    findings = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted(WRITE_SIDE.rglob("*.py"))
        for line, module in _imports(ast.parse(path.read_text()))
        if module == "command_center" or module.startswith("command_center.")
    ]
    assert findings == [], "\n".join(findings)
