"""A real daphne serving the app on a free loopback port, in its own process and SQLite file."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.browser_models import set_script

ROOT = Path(__file__).resolve().parents[2]
USERNAME = "live"
PASSWORD = "live-pass-123456"
ADMIN_USERNAME, ADMIN_PASSWORD = "root", "a-long-pass-123"  # the superuser, once create_superuser made it
SCRIPTED_MODEL = "python:tests.support.browser_models:scripted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    base: str
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen | None = None

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def token(self) -> str:
        response = httpx.post(
            f"{self.base}/api/v1/auth/token/", json={"username": USERNAME, "password": PASSWORD}
        )
        return response.json()["access"]

    def create_superuser(self) -> None:
        """The admin's user, ADMIN_USERNAME with ADMIN_PASSWORD."""
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_superuser({ADMIN_USERNAME!r}, password={ADMIN_PASSWORD!r})",
        )


def sse_events(response: httpx.Response) -> Iterator[tuple[str | None, dict]]:
    """A streamed response's server-sent events as they arrive: (event name, decoded data)."""
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


COMMANDS = {
    "daphne": lambda port: [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", port, APP],
    "uvicorn": lambda port: [
        *(sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", port, "--no-proxy-headers"),
        *("--lifespan", "off", "--no-access-log"),
    ],
}
APP = "evi360.asgi:application"


# Migrated SQLite files with the corpus and the demo user, by the settings they were made with:
# a process that starts many servers (the benchmark, the test session) sets one up only once
# (about 4 s each: three manage.py commands).
_TEMPLATES: dict[tuple[tuple[str, str], ...], Path] = {}


def _prepare_database(server: LiveServer, settings: dict[str, str]) -> None:
    database = server.workdir / "live.sqlite3"
    own_sqlite = "DATABASE_URL" not in settings  # another database is set up as it is
    key = tuple(sorted((k, v) for k, v in settings.items() if k.startswith("EVI360_")))
    template = _TEMPLATES.get(key)
    if own_sqlite and template is not None and template.exists():
        server.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, database)
        return
    for command in (["migrate", "-v0"], ["load_knowledge_base"], ["ensure_demo_user"]):
        server.manage(*command)
    if own_sqlite:
        template_dir = tempfile.mkdtemp(prefix="evi360-template-")
        atexit.register(shutil.rmtree, template_dir, ignore_errors=True)
        template = Path(template_dir) / "live.sqlite3"
        # SQLite's backup API, not a file copy: it includes what is still in the write-ahead log.
        with contextlib.closing(sqlite3.connect(database)) as source:
            with contextlib.closing(sqlite3.connect(template)) as copy:
                source.backup(copy)
        _TEMPLATES[key] = template


@contextmanager
def live_server(workdir: Path, *, asgi_server: str = "daphne", **settings: str) -> Iterator[LiveServer]:
    """The app served by ``asgi_server`` ("daphne", as deployed, or "uvicorn" to compare)."""
    env = {
        **{
            k: v for k, v in os.environ.items() if not k.startswith(("EVI360_", "DATABASE_URL", "ANTHROPIC_"))
        },
        "DATABASE_URL": f"sqlite:///{workdir / 'live.sqlite3'}",
        "EVI360_RATE_LIMIT": "1000/m",
        "EVI360_DEMO_USERNAME": USERNAME,
        "EVI360_DEMO_PASSWORD": PASSWORD,
        "DEBUG": "false",
        "SECRET_KEY": "live-" + "x" * 50,
        **settings,
    }
    server = LiveServer("", env, workdir)
    _prepare_database(server, settings)
    port = free_port()
    server.base = f"http://127.0.0.1:{port}"
    with open(workdir / "daphne.log", "wb") as log:
        process = subprocess.Popen(
            COMMANDS[asgi_server](str(port)),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server.process = process
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{server.base}/accounts/login/", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((workdir / "daphne.log").read_text()) from None
                    time.sleep(0.1)
            yield server
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


@contextmanager
def scripted_live_server(
    workdir: Path, script_file: Path, documents: dict[str, str] | None = None, **settings: str
) -> Iterator[LiveServer]:
    """The app answering with the scripted model (tests/support/browser_models.py), which reads
    ``script_file`` at every question (it says "Hallo" until a test writes a script of its own);
    ``documents`` (file name: Markdown) are loaded into its knowledge base besides the corpus."""
    if not script_file.exists():
        set_script(script_file, deltas=["Hallo"])
    with live_server(
        workdir, EVI360_MODEL=SCRIPTED_MODEL, EVI360_TEST_SCRIPT=str(script_file), **settings
    ) as server:
        if documents:
            kb = workdir / "kb"
            kb.mkdir()
            for name, text in documents.items():
                (kb / name).write_text(text, encoding="utf-8")
            server.manage("load_knowledge_base", str(kb))
        yield server
