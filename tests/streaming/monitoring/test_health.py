"""/metrics, /healthz, the end-of-stream log line and the stream_report command."""

import json
import logging
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from prometheus_client import REGISTRY

from streaming.engine import generate as generation
from streaming.models import StreamSession
from tests.conftest import log_session, new_session

pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def run_stream(user) -> StreamSession:

    session = await new_session(user, query="tillen")
    run = generation.start(generation.StreamRequest(session=session))
    try:
        await run.task
    except BaseException:
        pass
    return session


async def test_metrics_move_when_streams_complete_fail_and_are_cancelled(small_kb, user, scripted_model):
    from pydantic_ai.exceptions import ModelHTTPError

    before = {
        "completed": sample("evi360_streams_total", status="completed"),
        "error": sample("evi360_streams_total", status="error"),
        "code": sample("evi360_stream_errors_total", code="upstream_unavailable"),
        "tokens": sample("evi360_stream_tokens_total"),
        "ttft": sample("evi360_stream_ttft_milliseconds_count"),
    }
    scripted_model(["een ", "twee"])
    await run_stream(user)
    scripted_model(["een "], error=ModelHTTPError(529, "m"))
    await run_stream(user)
    assert sample("evi360_streams_total", status="completed") == before["completed"] + 1
    assert sample("evi360_streams_total", status="error") == before["error"] + 1
    assert sample("evi360_stream_errors_total", code="upstream_unavailable") == before["code"] + 1
    assert sample("evi360_stream_tokens_total") == before["tokens"] + 3
    assert sample("evi360_stream_ttft_milliseconds_count") == before["ttft"] + 2
    assert sample("evi360_streams_active") == 0


async def test_a_cancelled_stream_counts_as_cancelled(small_kb, user, scripted_model):
    import asyncio

    before = sample("evi360_streams_total", status="cancelled")
    scripted_model(["een ", "nooit"], before=asyncio.Event().wait)
    session = await new_session(user, query="tillen")
    run = generation.start(generation.StreamRequest(session=session))
    async for chunk in run.log.read():
        if b"event: token" in chunk:
            break
    run.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run.task
    assert sample("evi360_streams_total", status="cancelled") == before + 1
    assert sample("evi360_streams_active") == 0


async def test_one_log_line_per_stream_and_a_warning_when_slow(
    small_kb, user, scripted_model, settings, caplog
):
    caplog.set_level(logging.INFO, logger="streaming.engine.generate")
    scripted_model(["snel"])
    session = await run_stream(user)
    [record] = [r for r in caplog.records if getattr(r, "stream", None)]
    assert record.levelno == logging.INFO
    assert record.stream["session_id"] == str(session.id) and record.stream["outcome"] == "completed"
    assert record.stream["user_id"] == user.pk and record.stream["ttft_ms"] is not None

    caplog.clear()
    settings.EVI360_SLOW_TTFT_MS = 0
    scripted_model(["traag"], before=lambda: __import__("asyncio").sleep(0.05))
    await run_stream(user)
    [record] = [r for r in caplog.records if getattr(r, "stream", None)]
    assert record.levelno == logging.WARNING
    assert "time to first token" in record.getMessage()


def test_metrics_need_staff_a_token_or_an_allowed_address(client, user, django_user_model, settings):
    response = client.get("/metrics")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    client.force_login(user)
    assert client.get("/metrics").status_code == 403
    client.force_login(
        django_user_model.objects.create_user("ops", password="a-long-pass-123", is_staff=True)
    )
    staff = client.get("/metrics")
    assert staff.status_code == 200 and b"evi360_streams_active" in staff.content
    client.logout()
    settings.EVI360_METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    settings.EVI360_METRICS_ALLOWED_IPS = ["127.0.0.1"]
    assert client.get("/metrics").status_code == 200  # the test client's REMOTE_ADDR


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["cache"] == "ok"
    assert body["checks"]["model"] == "ok: offline"


def test_healthz_is_503_when_the_cache_is_down(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    from django.core.cache import caches

    caches._settings = None  # pick up the overridden setting
    try:
        response = client.get("/healthz")
        assert response.status_code == 503 and response.json()["status"] == "unhealthy"
    finally:
        caches._settings = None


def test_stream_report_text_and_json(user):
    log_session(user, ttft_ms=80, duration_ms=500)
    out = StringIO()
    call_command("stream_report", "--since", "24h", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["streams"] == 1 and data["rates"]["completed"] == 1.0 and data["ttft_ms"]["p50"] == 80
    out = StringIO()
    call_command("stream_report", "--since", "7d", stdout=out)
    assert "Streams since 7d" in out.getvalue() and "100.0 %" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("stream_report", "--since", "yesterday")
