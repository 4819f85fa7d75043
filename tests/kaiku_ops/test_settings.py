"""Settings come from the environment, then an optional .env; bad configuration is one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KAIKU_ENV"))}
    env.update({"KAIKU_ENV_FILE": str(tmp_path / "absent.env"), "DJANGO_SETTINGS_MODULE": "kaiku_ops.settings",
                "DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL})
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def run_manage(args: list[str], env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    code = (f"import sys; sys.argv = ['manage.py', *{args!r}]; import runpy; "
            "runpy.run_path('manage.py', run_name='__main__')")
    return run_python(code, env_overrides, tmp_path)


PRINT_DEBUG = ("import django; django.setup(); from django.conf import settings; "
               "print(settings.DEBUG, settings.TELEMETRY_MAX_BODY_BYTES)")


def test_settings_load_without_env_file(tmp_path):
    result = run_python(PRINT_DEBUG, {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", str(20 * 1024 * 1024)]


def test_env_file_is_read_and_the_environment_wins_over_it(tmp_path):
    env_file = tmp_path / "local.env"
    env_file.write_text("DEBUG=true\nTELEMETRY_MAX_BODY_BYTES=1234\n")
    result = run_python(PRINT_DEBUG, {"KAIKU_ENV_FILE": str(env_file), "TELEMETRY_MAX_BODY_BYTES": "999"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "999"]


def test_production_without_secret_key_is_one_clear_line(tmp_path):
    result = run_manage(["check"], {"KAIKU_ENV": "production", "SECRET_KEY": "", "ALLOWED_HOSTS": "ops.example"},
                        tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kaiku_ops: configuration error: SECRET_KEY must be set when KAIKU_ENV=production (see .env.example)"]


def test_unparseable_database_url_is_one_clear_line(tmp_path):
    result = run_manage(["check"], {"DATABASE_URL": "mysql//nonsense"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL" in lines[0] and "Traceback" not in result.stderr


def test_unreachable_redis_at_start_is_one_clear_line(tmp_path):
    result = run_manage(["preflight"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1, result.stderr
    assert "Redis at redis://127.0.0.1:1/0 is unreachable" in lines[0]
    assert "REDIS_URL" in lines[0]


def test_generated_secrets_live_in_the_data_dir_with_private_mode(tmp_path):
    result = run_python("import django; django.setup(); from django.conf import settings; "
                        "print(len(settings.SECRET_KEY) > 40, len(settings.TELEMETRY_INGEST_TOKEN) > 40)",
                        {"KAIKU_DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "", "TELEMETRY_INGEST_TOKEN": ""},
                        tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
    for name in ("secret-key", "ingest-token"):
        assert (tmp_path / "data" / name).stat().st_mode & 0o777 == 0o600
