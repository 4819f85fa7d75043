"""kaiku_ops settings.

Everything comes from the environment (12-factor), with an optional `.env` beside
manage.py for local use; a variable set in the environment always wins over `.env`.
`.env.example` lists every variable with its default and meaning.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from kaiku_ops import local_secrets

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
ENV_FILE = Path(env.str("KAIKU_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(str(ENV_FILE), overwrite=False)

DATA_DIR = Path(env.str("KAIKU_DATA_DIR", default=str(BASE_DIR / ".data")))

# "development" (default: embedded services allowed, generated secrets) or "production"
# (every secret and host must be given explicitly).
KAIKU_ENV = env.str("KAIKU_ENV", default="development")
if KAIKU_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"KAIKU_ENV must be 'development' or 'production', not {KAIKU_ENV!r}")
PRODUCTION = KAIKU_ENV == "production"


def _required_in_production(name: str) -> str | None:
    value = env.str(name, default="") or None
    if PRODUCTION and not value:
        raise ImproperlyConfigured(f"{name} must be set when KAIKU_ENV=production (see .env.example)")
    return value


SECRET_KEY = _required_in_production("SECRET_KEY") or local_secrets.get_or_create(DATA_DIR, "secret-key")
TELEMETRY_INGEST_TOKEN = (_required_in_production("TELEMETRY_INGEST_TOKEN")
                          or local_secrets.get_or_create(DATA_DIR, "ingest-token"))

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when KAIKU_ENV=production (comma-separated host names)")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "command_center.admin_site.CommandCenterAdminConfig",  # django.contrib.admin with the Command Center entry
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "axes",
    "telemetry",
    "command_center",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "kaiku_ops.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "kaiku_ops.unavailable.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",  # the lockout answer of a throttled login (last, as axes asks)
]

ROOT_URLCONF = "kaiku_ops.urls"
ASGI_APPLICATION = "kaiku_ops.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- PostgreSQL ---------------------------------------------------------------------------------

def _database(url_variable: str, url: str) -> dict:
    expected = "expected postgres://USER:PASSWORD@HOST:PORT/NAME"
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        raise ImproperlyConfigured(f"{url_variable} is not a PostgreSQL URL; {expected}")
    try:
        config = environ.Env.db_url_config(url)
    except Exception as error:  # django-environ raises assorted errors for malformed URLs
        raise ImproperlyConfigured(f"{url_variable} is not a valid database URL ({error}); {expected}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{url_variable} names no database; expected postgres://USER@HOST:PORT/NAME")
    config["CONN_MAX_AGE"] = 0
    config.setdefault("OPTIONS", {})
    config["OPTIONS"].setdefault("connect_timeout", 5)
    # Ingestion's per-session staging tables (telemetry/ingest/copy_insert.py) would otherwise grow each pooled
    # backend's local buffers to PostgreSQL's default 8 MB; beyond 1 MB they spill to the OS cache instead.
    config["OPTIONS"].setdefault("options", "-c temp_buffers=1MB")
    if env.bool("DATABASE_POOL", default=True):
        config["OPTIONS"]["pool"] = {"min_size": 1, "max_size": env.int("DATABASE_POOL_MAX", default=10),
                                     "timeout": 5}
    config["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="") or None}
    return config


def _embedded_database_url() -> str:
    if PRODUCTION:
        raise ImproperlyConfigured("DATABASE_URL must be set when KAIKU_ENV=production")
    from kaiku_ops.embedded import EmbeddedServiceError, database_url

    try:
        return database_url(DATA_DIR)
    except EmbeddedServiceError as error:
        raise ImproperlyConfigured(f"{error}; or set DATABASE_URL to use your own PostgreSQL") from None


DATABASE_URL = env.str("DATABASE_URL", default="") or _embedded_database_url()
DATABASES = {"default": _database("DATABASE_URL", DATABASE_URL)}

DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = _database("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}

# The voice quality tables live in the Kaiku platform database; without it we keep our own copies.
VOICE_DATABASE_URL = env.str("VOICE_DATABASE_URL", default="")
if VOICE_DATABASE_URL:
    DATABASES["voice"] = _database("VOICE_DATABASE_URL", VOICE_DATABASE_URL)
VOICE_DATABASE_ALIAS = "voice" if VOICE_DATABASE_URL else "default"

DATABASE_ROUTERS = ["kaiku_ops.db_routers.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Redis: cache, Celery broker, channel layer ----------------------------------------------------

def _embedded_redis_url() -> str:
    if PRODUCTION:
        raise ImproperlyConfigured("REDIS_URL must be set when KAIKU_ENV=production")
    from kaiku_ops.embedded import EmbeddedServiceError, redis_url

    try:
        return redis_url(DATA_DIR)
    except EmbeddedServiceError as error:
        raise ImproperlyConfigured(f"{error}; or set REDIS_URL to use your own Redis/Valkey") from None


REDIS_URL = env.str("REDIS_URL", default="") or _embedded_redis_url()
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="kaiku_ops"),
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 times reads out after 5 s, exactly as long as channels_redis blocks waiting for a message:
        # reads must outlast the wait, or a quiet web process's sockets end with 1011 (docs/reliability.md).
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                   "prefix": env.str("CHANNELS_PREFIX", default="kaiku_ops:asgi")},
    }
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the task to be redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 3}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# DatabaseScheduler copies these into the database at start-up, so the admin shows and edits them.
CELERY_BEAT_SCHEDULE = {
    "ensure-partitions": {"task": "telemetry.tasks.ensure_partitions", "schedule": 6 * 3600.0},
    "refresh-rollups": {"task": "telemetry.tasks.refresh_rollups", "schedule": 3600.0},
    "enforce-retention": {"task": "telemetry.tasks.enforce_retention", "schedule": 3600.0},
    # due hours of logs and spans into compressed chunks; a run with nothing due is a few index probes
    "pack-telemetry": {"task": "telemetry.tasks.pack_telemetry", "schedule": 600.0, "options": {"expires": 600}},
    # closed minutes of the durable metric buffer become telemetry_metric_samples rows
    "flush-metric-points": {"task": "telemetry.tasks.flush_metric_points", "schedule": 60.0},
    # service health matrix: every probe with a short timeout, results cached, transitions recorded
    "run-health-probes": {"task": "command_center.tasks.run_health_probes", "schedule": 10.0,
                          "options": {"expires": 10}},
    # the summary endpoint only ever reads this cache
    "refresh-summary": {"task": "command_center.tasks.refresh_summary", "schedule": 5.0, "options": {"expires": 5}},
    # vital_signs / voice_pulse pushes; each run is one Redis round trip while nobody watches
    "publish-live-panels": {"task": "command_center.push_tasks.publish_live_panels", "schedule": 5.0,
                            "options": {"expires": 5}},
}


# --- auth, i18n, static ----------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
SERVE_STATIC = env.bool("KAIKU_SERVE_STATIC", default=True)

LOGIN_URL = "admin:login"

# --- security ------------------------------------------------------------------------------------

# Behind the front door of deploy/ (nginx) only: trust its X-Forwarded-Proto (and the Procfile passes
# --proxy-headers to daphne, so X-Forwarded-For names the client). Directly exposed, any client could forge both.
KAIKU_BEHIND_PROXY = env.bool("KAIKU_BEHIND_PROXY", default=False)
if KAIKU_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from one address,
# that pair is locked out for AXES_COOLOFF_MINUTES (the right password included); other users and addresses
# are not, so nobody can lock the admins out from elsewhere. `manage.py axes_list_attempts` lists the attempts,
# `manage.py axes_reset` lifts lockouts. Axes' admin pages stay off: their add views refuse even superusers,
# which the auth sweep (tests/reliability/test_auth_everywhere.py) would have to classify first.
AXES_ENABLE_ADMIN = False
AUTHENTICATION_BACKENDS = ["kaiku_ops.security.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # no script of ours reads it: the admin forms carry the token in the page
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Asking browsers to preload HSTS for the whole domain is the domain owner's call, not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- telemetry ingestion ---------------------------------------------------------------------------

TELEMETRY_MAX_BODY_BYTES = env.int("TELEMETRY_MAX_BODY_BYTES", default=20 * 1024 * 1024)
# Wrong or missing ingest tokens per client address and minute before it is answered 429 with Retry-After.
TELEMETRY_AUTH_FAILURES_PER_MINUTE = env.int("TELEMETRY_AUTH_FAILURES_PER_MINUTE", default=60)
TELEMETRY_TRACE_SAMPLE_RATE = env.float("TELEMETRY_TRACE_SAMPLE_RATE", default=0.01)
# Per-label-set minute samples are the bulk of metric storage; older ranges are answered from the per-metric
# minute table and the hourly rollup, which keep the full 30 days (docs/benchmarks.md, "Storage"). One day keeps
# per-label minute detail for the default 24 h range (older per-label charts are hourly) and, with packing, all
# native tables under 1 GB at `heavy` (~100 MiB more per extra day).
TELEMETRY_SAMPLE_RETENTION_DAYS = env.int("TELEMETRY_SAMPLE_RETENTION_DAYS", default=1)
# Spans kept only because their trace was sampled (not errors, not slow) are most of the trace index; each day of
# trace chunks is rewritten without them once the whole day is this old. Errors and slow spans stay 30 days.
TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS = env.int("TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS", default=1)
# Log records and spans of every whole hour that ended this long ago are packed into compressed per-hour
# chunks (telemetry.packing); until then they stay rows, which late and re-sent records still reach.
TELEMETRY_PACK_AFTER_MINUTES = env.int("TELEMETRY_PACK_AFTER_MINUTES", default=60)

# --- Command Center --------------------------------------------------------------------------------
# Every COMMAND_CENTER_* variable as given, read once here: command_center.thresholds.thresholds() parses the
# *_WARN/_CRIT ones (defaults for the rest), and the system check (command_center.checks) reports bad values
# and unknown names (typos) at start-up. The settings below are the remaining Command Center settings.
COMMAND_CENTER_THRESHOLD_ENV = {
    name: value for name, value in env.ENVIRON.items() if name.startswith("COMMAND_CENTER_")
}
COMMAND_CENTER_TRACE_SLOW_MS = env.int("COMMAND_CENTER_TRACE_SLOW_MS", default=1000)
COMMAND_CENTER_DB_SLOW_MS = env.int("COMMAND_CENTER_DB_SLOW_MS", default=100)
COMMAND_CENTER_FEATURE_CLIENT_TELEMETRY = env.bool("COMMAND_CENTER_FEATURE_CLIENT_TELEMETRY", default=False)
COMMAND_CENTER_FEATURE_DEPLOY_MARKERS = env.bool("COMMAND_CENTER_FEATURE_DEPLOY_MARKERS", default=False)
COMMAND_CENTER_FEATURE_REDIS_STATS = env.bool("COMMAND_CENTER_FEATURE_REDIS_STATS", default=False)
KAIKU_API_HEALTH_URL = env.str("KAIKU_API_HEALTH_URL", default="")
# "Collecting data…" instead of zeros for this long after a web process starts (design section 15)
COMMAND_CENTER_COLLECTING_SECONDS = env.float("COMMAND_CENTER_COLLECTING_SECONDS", default=60.0)
COMMAND_CENTER_PROBE_TIMEOUT_SECONDS = env.float("COMMAND_CENTER_PROBE_TIMEOUT_SECONDS", default=2.0)
COMMAND_CENTER_OTEL_COLLECTOR_ENDPOINT = env.str("COMMAND_CENTER_OTEL_COLLECTOR_ENDPOINT", default="")
# The service whose version/environment/uptime the overview shows; unset: the one with the most live instances
COMMAND_CENTER_MAIN_SERVICE = env.str("COMMAND_CENTER_MAIN_SERVICE", default="")
# External tools for deep forensics; URL templates may use {trace_id}, {from}, {to}. Unset: links hidden.
COMMAND_CENTER_GRAFANA_URL = env.str("COMMAND_CENTER_GRAFANA_URL", default="")
COMMAND_CENTER_GRAFANA_DASHBOARD_URL = env.str("COMMAND_CENTER_GRAFANA_DASHBOARD_URL", default="")
COMMAND_CENTER_TEMPO_URL = env.str("COMMAND_CENTER_TEMPO_URL", default="")
COMMAND_CENTER_TEMPO_TRACE_URL = env.str("COMMAND_CENTER_TEMPO_TRACE_URL", default="")
COMMAND_CENTER_LOKI_URL = env.str("COMMAND_CENTER_LOKI_URL", default="")
COMMAND_CENTER_LOKI_QUERY_URL = env.str("COMMAND_CENTER_LOKI_QUERY_URL", default="")
COMMAND_CENTER_PROMETHEUS_URL = env.str("COMMAND_CENTER_PROMETHEUS_URL", default="")
COMMAND_CENTER_PROMETHEUS_QUERY_URL = env.str("COMMAND_CENTER_PROMETHEUS_QUERY_URL", default="")
# S3 storage probe (head_bucket); unset bucket: shown as "unavailable: not configured"
S3_BUCKET = env.str("S3_BUCKET", default="")
S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="")
S3_REGION = env.str("S3_REGION", default="")
S3_ACCESS_KEY_ID = env.str("S3_ACCESS_KEY_ID", default="")
S3_SECRET_ACCESS_KEY = env.str("S3_SECRET_ACCESS_KEY", default="")
KAIKU_DEMO = env.bool("KAIKU_DEMO", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
