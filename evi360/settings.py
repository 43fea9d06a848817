"""EVI 360 settings: everything comes from the environment, with safe development defaults.

Every value is read through one of the strict helpers below, so a typo such as ``DEBUG=flase`` or
``EVI360_STREAM_TIMEOUT=6o`` stops the process at start-up instead of silently meaning something else.
``.env.example`` lists every variable; the README's configuration table explains them.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from evi360.proxies import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean (use one of: true/false, 1/0, yes/no, on/off)"
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def parse_origin(raw: str) -> str:
    """``raw`` as the browser sends it in ``Origin`` (scheme://host[:port], lower case, no default
    port), or a ValueError saying why it never could match one."""
    try:
        url = urlsplit(raw)
        port = url.port
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not an origin ({exc})") from None
    if raw == "*":
        raise ValueError("'*' (every origin) is not allowed: list each web app's origin")
    if url.scheme not in ("http", "https") or not url.hostname or raw.endswith(":"):
        raise ValueError(f"{raw!r} is not an origin: use scheme://host[:port], e.g. https://app.example")
    if url.username is not None or url.password is not None or url.path or url.query or url.fragment:
        raise ValueError(f"{raw!r} is not an origin: only scheme://host[:port], no path, not even a '/'")
    if port == {"http": 80, "https": 443}[url.scheme]:
        raise ValueError(f"{raw!r}: leave out the default port (browsers send {url.scheme}://{url.hostname})")
    return raw.lower()


def _development_secret_key(path: Path) -> str:
    """A per-checkout key, generated once, so sessions survive a restart of ``make run``."""
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(50)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


# Like healthchecks: development is the default; production sets DEBUG=false and must then
# provide SECRET_KEY and ALLOWED_HOSTS explicitly.
DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = _development_secret_key(BASE_DIR / ".secret_key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# A refused CSRF check is a JSON error under /api/ (Django's HTML page elsewhere).
CSRF_FAILURE_VIEW = "evi360.errors.csrf_failure"

# daphne's app only replaces `manage.py runserver` with an ASGI server (Django's own would buffer
# the async SSE streams). It imports Twisted into every process (docs/performance.md), so it is
# installed for that command alone: uvicorn (`make run`) and the daphne CLI do not need it.
_RUNSERVER = sys.argv[1:2] == ["runserver"]
INSTALLED_APPS = [
    *(["daphne"] if _RUNSERVER else []),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # Refresh tokens are recorded, and blacklisted when rotated, logged out or revoked.
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",  # its system checks validate the CORS_* settings below
    "csp",  # its system checks flag django-csp 3.x settings
    # Login throttling: failed logins are counted in the database (see "Login throttling" below).
    "axes",
    "citations",
    "streaming",
]

# --- Cross-origin browser apps (django-cors-headers) -----------------------------------------------
# EVI360_CORS_ORIGINS: the web apps' origins (comma-separated, exact, e.g. https://app.example)
# that may call /api/ and /v1/ from a browser. Empty: no CORS middleware at all (same origin only;
# a preflight is then our 405, which browsers take as a refusal).
# Their callers send a bearer token or API key, never cookies: no credentials are allowed.
try:
    EVI360_CORS_ORIGINS = [parse_origin(raw) for raw in env_list("EVI360_CORS_ORIGINS", "")]
except ValueError as exc:
    raise ImproperlyConfigured(f"EVI360_CORS_ORIGINS: {exc}") from None
CORS_ALLOWED_ORIGINS = EVI360_CORS_ORIGINS
CORS_URLS_REGEX = r"^/(api|v1)/"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ["DELETE", "GET", "OPTIONS", "POST"]
# Last-Event-ID: fetch-based SSE clients resume with it.
CORS_ALLOW_HEADERS = ["authorization", "content-type", "last-event-id"]
# What clients read of our responses beyond the CORS-safelisted ones.
CORS_EXPOSE_HEADERS = ["x-vercel-ai-ui-message-stream", "retry-after", "link"]

# No gzip middleware here: compression buffers Server-Sent Events.
# Django's own middleware, subclassed to run on the event loop rather than in a thread per
# hook (evi360/middleware.py).
MIDDLEWARE = [
    # First: it answers preflights (OPTIONS) itself, before any view would refuse the method, and
    # adds its headers to every response of /api/ and /v1/, errors included.
    *(["corsheaders.middleware.CorsMiddleware"] if EVI360_CORS_ORIGINS else []),
    "evi360.middleware.SecurityMiddleware",
    "evi360.middleware.CSPMiddleware",
    "evi360.middleware.SessionMiddleware",
    "evi360.middleware.LocaleMiddleware",
    "evi360.middleware.CommonMiddleware",
    "evi360.middleware.CsrfViewMiddleware",
    "evi360.middleware.AuthenticationMiddleware",
    "evi360.middleware.MessageMiddleware",
    "evi360.middleware.XFrameOptionsMiddleware",
    # Async-capable: on the event loop it only reads a flag the login views set; the refusal page of a
    # locked-out login is its one trip to a thread.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "evi360.urls"
ASGI_APPLICATION = "evi360.asgi.application"

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

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE transactions plus a busy timeout make
    # concurrent writers wait for the lock instead of failing with "database is locked".
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": env_float("SQLITE_BUSY_TIMEOUT", 20.0, minimum=0),
    }
    # Tests on a file too, not Django's default shared-cache in-memory database: that one locks
    # whole tables and fails at once ("database table is locked") where a file waits its turn.
    _db["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"evi360-test-{os.getpid()}.sqlite3")}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
# Threads (each with one connection) that do the database work of all open streams.
EVI360_DB_THREADS = env_int("EVI360_DB_THREADS", 4, minimum=1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (also holds the rate-limit counters) ----------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "evi360"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes' backend first: it refuses a locked-out login before any password is checked. It
# authenticates no one itself; sessions, JWTs and API keys never pass through authenticate().
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en"
LANGUAGES = [("nl", "Nederlands"), ("en", "English")]
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []

# Content-Security-Policy of the HTML pages: our own origin only, no inline script or style (the
# templates have none; tests/evi360/test_csp.py keeps it so). Responses that are not HTML (the
# API's JSON, SSE, the schema) get evi360.middleware.CSPMiddleware's "default-src 'none'".
# EVI360_CSP_REPORT_URI: where browsers POST violation reports (a collector of yours), if set.
EVI360_CSP_REPORT_URI = env_str("EVI360_CSP_REPORT_URI")
if EVI360_CSP_REPORT_URI and not re.fullmatch(r"(https?://|/)\S+", EVI360_CSP_REPORT_URI):
    raise ImproperlyConfigured(
        f"EVI360_CSP_REPORT_URI={EVI360_CSP_REPORT_URI!r} is not an http(s) URL or a path"
    )
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # the admin's and Swagger UI's icons are data: URLs
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "report-uri": EVI360_CSP_REPORT_URI or None,
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "streaming.access.auth.ApiKeyAuthentication",
        # simplejwt's, reading the header by our one rule and refusing revoked tokens too.
        "streaming.access.auth.BearerJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # The API speaks JSON only, the token endpoints included; parsed by our one parser (no 500s).
    "DEFAULT_PARSER_CLASSES": ["evi360.parsing.JSONParser"],
    "EXCEPTION_HANDLER": "evi360.errors.drf_exception_handler_json",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# OpenAPI 3 at /api/schema/, Swagger UI at /api/docs/ served from our static files (the sidecar),
# never from a CDN. The async streaming views are plain Django views: streaming/api/schema/ adds them.
SPECTACULAR_SETTINGS = {
    "TITLE": "EVI 360 API",
    "DESCRIPTION": (
        "Workplace-safety answers from the EVI 360 knowledge base, streamed token by token as "
        "Server-Sent Events. The event stream is specified in docs/sse-protocol.md."
    ),
    "VERSION": "1",
    # 3.1: its schemas are JSON Schema 2020-12, which can say that an SSE event's data is JSON of
    # a given shape (contentMediaType/contentSchema).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from validator.swagger.io: it would send our schema's URL to a third party (and the
    # CSP refuses its image).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["streaming.api.schema.add_streaming_endpoints"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "streaming.api.schema.add_error_responses",
    ],
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1, minimum=1)),
    # A refresh gives a new refresh token too; the used one is blacklisted.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Refuses revoked refresh tokens, and those of deleted users, as a 401 (streaming/access/tokens.py).
    "TOKEN_REFRESH_SERIALIZER": "streaming.access.tokens.TokenRefreshSerializer",
    "TOKEN_BLACKLIST_SERIALIZER": "streaming.access.tokens.TokenBlacklistSerializer",
}

# --- Login throttling (django-axes) --------------------------------------------------------------
# /accounts/login/, /admin/login/ and POST /api/v1/auth/token/: after EVI360_LOGIN_FAILURE_LIMIT
# failed logins for one username, or from one client address, further logins of that username or
# from that address are refused (429 with Retry-After) until EVI360_LOGIN_COOLOFF_SECONDS after the
# last counted failure. Counts live in the database (axes' AccessAttempt): shared by every worker
# whether or not Redis is configured, and listed in the admin, where staff clear a lockout.
EVI360_LOGIN_FAILURE_LIMIT = env_int("EVI360_LOGIN_FAILURE_LIMIT", 5, minimum=1)
EVI360_LOGIN_COOLOFF_SECONDS = env_int("EVI360_LOGIN_COOLOFF_SECONDS", 900, minimum=1)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = EVI360_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=EVI360_LOGIN_COOLOFF_SECONDS)
# Each on its own: per account (any address) and per address (any username).
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# A refused attempt during a lockout is not counted: the lockout ends when Retry-After said.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# REMOTE_ADDR only: never X-Forwarded-For (which a client can set), not even through django-ipware.
AXES_CLIENT_IP_CALLABLE = "streaming.access.login_throttling.client_address"
AXES_LOCKOUT_CALLABLE = "streaming.access.login_throttling.lockout_response"

# --- EVI 360 ----------------------------------------------------------------------------------
# "offline" (the built-in extractive model, no key and no network) or a Pydantic AI model name
# such as "anthropic:claude-sonnet-4-6".
EVI360_MODEL = env_str("EVI360_MODEL", "offline")
if EVI360_MODEL != "offline" and ":" not in EVI360_MODEL:
    raise ImproperlyConfigured(
        f"EVI360_MODEL={EVI360_MODEL!r}: use 'offline' or a provider-prefixed name such as "
        "'anthropic:claude-sonnet-4-6'"
    )
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL")
if EVI360_MODEL.startswith("anthropic:") and not ANTHROPIC_API_KEY:
    raise ImproperlyConfigured(f"EVI360_MODEL={EVI360_MODEL} needs ANTHROPIC_API_KEY")
# The anthropic SDK's HTTP client: "aiohttp" (its aiohttp transport, the cheaper per delta:
# docs/performance.md) or "httpx" (its default). One pool per process, every connection kept alive
# up to EVI360_UPSTREAM_MAX_CONNECTIONS, so a burst after a quiet spell does not open new TLS ones.
EVI360_ANTHROPIC_HTTP = env_str("EVI360_ANTHROPIC_HTTP", "aiohttp")
if EVI360_ANTHROPIC_HTTP not in ("aiohttp", "httpx"):
    raise ImproperlyConfigured(f"EVI360_ANTHROPIC_HTTP={EVI360_ANTHROPIC_HTTP!r}: use 'aiohttp' or 'httpx'")
EVI360_UPSTREAM_MAX_CONNECTIONS = env_int("EVI360_UPSTREAM_MAX_CONNECTIONS", 1000, minimum=1)
# Retries of the model SDK before the first token (each one delays the answer).
EVI360_UPSTREAM_MAX_RETRIES = env_int("EVI360_UPSTREAM_MAX_RETRIES", 1, minimum=0)
EVI360_MAX_OUTPUT_TOKENS = env_int("EVI360_MAX_OUTPUT_TOKENS", 2048, minimum=1)
EVI360_OFFLINE_TOKEN_DELAY_MS = env_float("EVI360_OFFLINE_TOKEN_DELAY_MS", 25.0, minimum=0)
# How many knowledge-base chunks are retrieved and numbered [1]..[k] for the model.
EVI360_RETRIEVAL_K = env_int("EVI360_RETRIEVAL_K", 5, minimum=1)
# The largest knowledge-base file accepted, uploaded in the admin or loaded from the command line.
EVI360_MAX_UPLOAD_MB = env_int("EVI360_MAX_UPLOAD_MB", 25, minimum=1)
# Files uploaded in the admin are processed in the background (citations/uploads.py): "thread" runs
# a worker thread in the web process, started by an upload (and by the upload list when files
# wait); "command" leaves them to `manage.py process_uploads`. A file whose worker has given no
# sign of life for EVI360_UPLOAD_STALE_SECONDS is retried once, then marked failed.
EVI360_UPLOAD_WORKER = env_str("EVI360_UPLOAD_WORKER", "thread")
if EVI360_UPLOAD_WORKER not in ("thread", "command"):
    raise ImproperlyConfigured(f"EVI360_UPLOAD_WORKER={EVI360_UPLOAD_WORKER!r}: use 'thread' or 'command'")
EVI360_UPLOAD_STALE_SECONDS = env_int("EVI360_UPLOAD_STALE_SECONDS", 300, minimum=10)
# Dense retrieval next to full-text search (citations/embeddings.py): "local:use-multilingual-v3"
# (built in, offline), "voyageai:voyage-3.5", "openai:text-embedding-3-small" (or any model of an
# OpenAI-compatible server at EVI360_EMBEDDING_BASE_URL), "cohere:embed-multilingual-v3.0", another
# Pydantic AI embedding model name, "python:package.module:function", or "none" (full-text only).
EVI360_EMBEDDING_MODEL = env_str("EVI360_EMBEDDING_MODEL", "local:use-multilingual-v3")
if EVI360_EMBEDDING_MODEL not in ("none", "local") and not re.fullmatch(
    r"[\w.-]+:\S+", EVI360_EMBEDDING_MODEL
):
    raise ImproperlyConfigured(
        f"EVI360_EMBEDDING_MODEL={EVI360_EMBEDDING_MODEL!r}: use 'local:use-multilingual-v3', 'none' or a "
        "provider-prefixed name such as 'voyageai:voyage-3.5'"
    )
EVI360_EMBEDDING_BASE_URL = env_str("EVI360_EMBEDDING_BASE_URL")
if EVI360_EMBEDDING_BASE_URL and not EVI360_EMBEDDING_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"EVI360_EMBEDDING_BASE_URL={EVI360_EMBEDDING_BASE_URL!r} is not an http(s) URL"
    )
EVI360_EMBEDDING_API_KEY = env_str("EVI360_EMBEDDING_API_KEY")
# 0: the model's own dimension; otherwise asked of models that can shorten their vectors.
EVI360_EMBEDDING_DIMENSIONS = env_int("EVI360_EMBEDDING_DIMENSIONS", 0, minimum=0)
# How long a question waits for its embedding; past it (or when the provider fails) that question
# is answered from full-text search alone, logged and counted in /metrics.
EVI360_EMBEDDING_TIMEOUT = env_float("EVI360_EMBEDDING_TIMEOUT", 2.0, minimum=0.01)
# The built-in model's embedding table, written once and memory-mapped (shared by the workers).
EVI360_EMBEDDING_CACHE_DIR = Path(env_str("EVI360_EMBEDDING_CACHE_DIR", str(BASE_DIR / "var" / "cache")))

# --- Streaming ---
EVI360_STREAM_TIMEOUT = env_float("EVI360_STREAM_TIMEOUT", 60.0, minimum=1)
# A session still "streaming" this long after the timeout belongs to a dead process.
EVI360_INTERRUPTED_MARGIN = env_float("EVI360_INTERRUPTED_MARGIN", 60.0, minimum=0)
EVI360_RATE_LIMIT = env_str("EVI360_RATE_LIMIT", "30/m")
if not re.fullmatch(r"\d+/\d*[smhd]", EVI360_RATE_LIMIT):
    raise ImproperlyConfigured(f"EVI360_RATE_LIMIT={EVI360_RATE_LIMIT!r}: use e.g. 30/m, 100/h, 5/10s")
EVI360_MAX_CONCURRENT_STREAMS = env_int("EVI360_MAX_CONCURRENT_STREAMS", 3, minimum=1)
# How long the generation of a session created with POST /api/v1/stream/sessions goes on while no
# reader is connected (EventSource reconnects). A stream read in the request that started it
# (/stream/query, /v1/chat/completions) stops as soon as that request goes away.
EVI360_RESUME_GRACE = env_float("EVI360_RESUME_GRACE", 15.0, minimum=0)
# How long a web page may take to open the EventSource of a session it created.
EVI360_FIRST_READER_TIMEOUT = env_float("EVI360_FIRST_READER_TIMEOUT", 10.0, minimum=0.1)
# How long a finished stream's events stay readable (a late or reconnecting EventSource).
EVI360_EVENT_RETENTION = env_float("EVI360_EVENT_RETENTION", 3600.0, minimum=0)
# Where the streams' events live: "memory" (this process only) or "redis" (Redis Streams, so any
# worker can serve any session's events). Redis whenever REDIS_URL is set, unless told otherwise.
EVI360_EVENT_LOG = env_str("EVI360_EVENT_LOG", "redis" if REDIS_URL else "memory")
if EVI360_EVENT_LOG not in ("memory", "redis"):
    raise ImproperlyConfigured(f"EVI360_EVENT_LOG={EVI360_EVENT_LOG!r}: use 'memory' or 'redis'")
if EVI360_EVENT_LOG == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("EVI360_EVENT_LOG=redis needs REDIS_URL")
# Each EVI360_EVENT_LOG's shared backend (streaming/eventlog/base.py), imported on first use;
# "memory" has none: only this process reads its streams.
EVENT_LOG_BACKENDS = {"memory": None, "redis": "streaming.eventlog.redis.RedisEventLog"}
# With the Redis event log: how often each worker looks for sessions whose worker died (killed,
# crashed) to mark them interrupted; such a session is noticed within about three intervals.
EVI360_ORPHAN_CHECK_INTERVAL = env_float("EVI360_ORPHAN_CHECK_INTERVAL", 10.0, minimum=0.1)
# How many earlier (question, answer) turns the model sees, newest first.
EVI360_HISTORY_TURNS = env_int("EVI360_HISTORY_TURNS", 6, minimum=0)
# /v1/chat/completions: bounds on what a client may send as messages, counted in characters as
# the REST API counts its query (streaming.api.bodies.MAX_QUERY_CHARS, which also bounds the question):
# each message (an assistant answer of the history may be longer than a question), and all of
# them together (the history is sent upstream with every question). Over either: a 400.
EVI360_OPENAI_MAX_MESSAGE_CHARS = env_int("EVI360_OPENAI_MAX_MESSAGE_CHARS", 16_000, minimum=1)
EVI360_OPENAI_MAX_MESSAGES_CHARS = env_int("EVI360_OPENAI_MAX_MESSAGES_CHARS", 64_000, minimum=1)
# On SIGTERM a worker starts no new streams and gives running ones this long to finish; the rest
# end as "interrupted" with a retryable error event.
EVI360_SHUTDOWN_GRACE = env_float("EVI360_SHUTDOWN_GRACE", 20.0, minimum=0)
EVI360_SSE_KEEPALIVE = env_float("EVI360_SSE_KEEPALIVE", 15.0, minimum=0.01)
EVI360_SSE_RETRY_MS = env_int("EVI360_SSE_RETRY_MS", 3000, minimum=0)

# --- Monitoring ---
# A stream whose first token took longer than this is logged as a WARNING.
EVI360_SLOW_TTFT_MS = env_float("EVI360_SLOW_TTFT_MS", 500.0, minimum=0)
# /metrics: open to staff sessions, to "Authorization: Bearer <EVI360_METRICS_TOKEN>", and to
# requests from EVI360_METRICS_ALLOWED_IPS (comma-separated, e.g. a scraper on an internal network).
EVI360_METRICS_TOKEN = env_str("EVI360_METRICS_TOKEN")
EVI360_METRICS_ALLOWED_IPS = env_list("EVI360_METRICS_ALLOWED_IPS", "")

# --- Proxies ---
# Peers (addresses or CIDR networks, comma-separated) whose X-Forwarded-For is believed: from
# them, the client is the header's first untrusted address from the right (evi360/proxies.py).
# Empty: the header is ignored everywhere and the client is the TCP peer.
try:
    EVI360_TRUSTED_PROXIES = parse_networks(env_list("EVI360_TRUSTED_PROXIES", ""))
except ValueError as exc:
    raise ImproperlyConfigured(f"EVI360_TRUSTED_PROXIES: {exc}") from None

EVI360_DEMO_USERNAME = env_str("EVI360_DEMO_USERNAME", "demo")
EVI360_DEMO_PASSWORD = env_str("EVI360_DEMO_PASSWORD")

# LOG_FORMAT=json: one JSON object per line (for log shippers); plain text otherwise.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be 'plain' or 'json'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "evi360.logging.PlainFormatter"},
        "json": {"()": "evi360.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
}
