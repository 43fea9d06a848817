"""A production-like run on one machine: several uvicorn (or daphne) workers behind nginx, sharing
PostgreSQL and Redis.

    DATABASE_URL=postgres://… REDIS_URL=redis://… python deploy/cluster.py [--workers 2] [--port 8000]
        [--server uvicorn|daphne]

(`make cluster` does this with the local PostgreSQL and Redis.) It prepares the database once
(migrate, the bundled knowledge base, the demo user, interrupted streams), collects the static
files for nginx to serve, starts the workers on the ports after ``--port`` and nginx on
``--port`` (config: deploy/nginx.conf.template, written to var/cluster/), and stops them all
gracefully on Ctrl+C or SIGTERM: the workers get SIGTERM, nginx SIGQUIT. If any of them dies, the
rest are stopped too and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from string import Template
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
APP = "evi360.asgi:application"
# How a worker is started on a loopback port. uvicorn (uvloop + httptools) is the default: it spends
# about a third less CPU per streamed token than daphne here (docs/performance.md). Neither reads
# X-Forwarded-For itself (daphne's --proxy-headers believes the leftmost, client-written address):
# the app does, trusting EVI360_TRUSTED_PROXIES (nginx on loopback), the same under both
# (evi360/proxies.py). Both drain on SIGTERM (streaming/engine/shutdown.py).
SERVERS = {
    "uvicorn": lambda port: [
        *("-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers"),
        *("--lifespan", "off", "--no-access-log"),
        # Beyond this many open connections (streams included) a 503, not an overloaded worker.
        # No daphne equivalent; and not daphne's --http-timeout: it cuts responses, SSE too.
        *("--timeout-keep-alive", "5", "--limit-concurrency", "1000"),
    ],
    "daphne": lambda port: ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APP],
}


def _fail(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr)
    raise SystemExit(2)


def ensure_postgres_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (a fresh machine)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_for(host: str, port: int, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(host, port):
        if process.poll() is not None:
            _fail(f"{what} exited with {process.returncode} while starting")
        if time.monotonic() > deadline:
            _fail(f"{what} did not answer on {host}:{port} within {timeout:g} s")
        time.sleep(0.1)


def write_nginx_config(run_dir: Path, host: str, port: int, workers: list[int], static_root: Path) -> Path:
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    config = Template(TEMPLATE.read_text()).substitute(
        # nginx started as root hands its workers to an unprivileged user; keep root's access to
        # these files then (a container or CI runner), else run as whoever started it.
        user_line="user root;" if os.geteuid() == 0 else "",
        run_dir=run_dir,
        host=host,
        port=port,
        servers="\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in workers),
        static_root=static_root,
    )
    path = run_dir / "nginx.conf"
    path.write_text(config)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="nginx; workers use the next ports")
    parser.add_argument(
        "--server", choices=sorted(SERVERS), default="uvicorn", help="the ASGI server of each worker"
    )
    parser.add_argument("--worker-ports", type=int, nargs="*", help="instead of the ports after --port")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "var" / "cluster")
    parser.add_argument("--skip-setup", action="store_true", help="the database is ready already")
    args = parser.parse_args(argv)

    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        _fail("several workers need a shared PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    if not Path(NGINX).exists():
        _fail(f"no nginx at {NGINX} (Debian: apt-get install nginx-light)")
    worker_ports = args.worker_ports or [args.port + 1 + i for i in range(args.workers)]

    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_dir = run_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    # nginx reaches the workers from loopback: its X-Forwarded-For is the one believed.
    env = {
        "EVI360_TRUSTED_PROXIES": "127.0.0.1",
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    python = sys.executable

    def manage(*command: str) -> None:
        subprocess.run([python, str(ROOT / "manage.py"), *command], env=env, cwd=ROOT, check=True)

    if not args.skip_setup:
        ensure_postgres_database(database_url)
        manage("migrate", "--no-input", "-v0")
        manage("load_knowledge_base")
        manage("ensure_demo_user")
    manage("collectstatic", "--no-input", "-v0")
    static_root = Path(
        subprocess.run(
            [python, "-c", "from django.conf import settings; print(settings.STATIC_ROOT)"],
            env={**env, "DJANGO_SETTINGS_MODULE": "evi360.settings"},
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )

    children: list[tuple[str, subprocess.Popen]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    try:
        for port in worker_ports:
            worker = subprocess.Popen(
                [python, *SERVERS[args.server](port)],
                env=env,
                cwd=ROOT,
            )
            children.append((f"worker :{port}", worker))
        for (what, process), port in zip(children, worker_ports, strict=True):
            _wait_for("127.0.0.1", port, process, what)
        config = write_nginx_config(run_dir, args.host, args.port, worker_ports, static_root)
        proxy = subprocess.Popen([NGINX, "-p", str(run_dir), "-c", str(config), "-g", "daemon off;"])
        children.append(("nginx", proxy))
        _wait_for(args.host, args.port, proxy, "nginx")
        print(
            f"cluster ready: http://{args.host}:{args.port}/ (nginx) → "
            f"{len(worker_ports)} workers on {', '.join(map(str, worker_ports))}",
            flush=True,
        )
        while not stopping:
            for what, process in children:
                if process.poll() is not None:
                    print(f"cluster: {what} exited with {process.returncode}; stopping", file=sys.stderr)
                    stopping, status = True, 1
            time.sleep(0.2)
    finally:
        for what, process in children:
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT if what == "nginx" else signal.SIGTERM)
        # Workers finish their running streams first (EVI360_SHUTDOWN_GRACE), then stop.
        deadline = time.monotonic() + float(os.environ.get("EVI360_SHUTDOWN_GRACE", "10")) + 10
        for _what, process in children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
    return status


if __name__ == "__main__":
    sys.exit(main())
