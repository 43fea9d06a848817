"""Which shared event log a process uses: EVI360_EVENT_LOG picks it; "memory" has none."""

import subprocess
import sys

from streaming import eventlog


def test_memory_has_no_shared_log(settings):
    settings.EVI360_EVENT_LOG = "memory"
    assert eventlog.shared() is None


def test_redis_is_one_instance_per_process(settings):
    from streaming.eventlog.redis import RedisEventLog

    settings.EVI360_EVENT_LOG = "redis"
    log = eventlog.shared()
    assert isinstance(log, RedisEventLog) and eventlog.shared() is log


def test_without_the_redis_log_redis_py_is_not_imported():
    check = (
        "import sys, django; django.setup(); from streaming import eventlog; "
        "from streaming.eventlog import lookup; "
        "assert eventlog.shared() is None and lookup.shared() is None; print('redis' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        env={"DJANGO_SETTINGS_MODULE": "evi360.settings", "EVI360_EVENT_LOG": "memory", "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "False", done.stderr


class PluggedLog:
    """A backend named by its dotted path, as a deployment could plug in its own."""


def test_the_backend_is_the_class_its_setting_names(settings):
    settings.EVENT_LOG_BACKENDS = {**settings.EVENT_LOG_BACKENDS, "redis": f"{__name__}.PluggedLog"}
    settings.EVI360_EVENT_LOG = "redis"
    assert isinstance(eventlog.shared(), PluggedLog)
