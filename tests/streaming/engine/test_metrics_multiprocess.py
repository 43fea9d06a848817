"""/metrics is right with several worker processes (prometheus-client's multiprocess mode)."""

import os
import subprocess
import sys

from django.conf import settings

SECOND_END = "metrics.record_end('error', 'upstream_unavailable', None, 300, 1);"
RECORD = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'evi360.settings'); django.setup();"
    "from streaming.engine import metrics;"
    "metrics.record_start(); metrics.record_start();"
    "metrics.record_end('completed', '', 120, 900, 5);"
    "{second_end}"
    "print('recorded', flush=True);"
    "import time; time.sleep({linger})"
)
EXPOSE = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'evi360.settings'); django.setup();"
    "from streaming.engine import metrics; print(metrics.exposition().decode())"
)


def test_counters_add_up_across_worker_processes(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run = lambda code: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    run(RECORD.format(second_end=SECOND_END, linger=0))
    run(RECORD.format(second_end=SECOND_END, linger=0))
    # A third worker still running, with one of its two streams still open.
    live = subprocess.Popen(
        [sys.executable, "-c", RECORD.format(second_end="", linger=30)],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Read once it has recorded everything: /metrics reads the workers' files one after
        # another, so a scrape during the recording could see its counters but not its gauge.
        assert live.stdout.readline().strip() == "recorded"
        text = run(EXPOSE).stdout
        assert 'evi360_streams_total{status="completed"} 3.0' in text
        assert 'evi360_stream_errors_total{code="upstream_unavailable"} 2.0' in text
        assert "evi360_stream_tokens_total 17.0" in text
        assert "evi360_stream_ttft_milliseconds_count 3.0" in text
        # livesum: only the running process's open stream counts; finished processes drop out.
        assert "evi360_streams_active 1.0" in text
    finally:
        live.kill()
        live.wait()
