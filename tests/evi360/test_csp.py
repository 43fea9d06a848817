"""The Content-Security-Policy (#18): every page sends one that allows no inline script or style
and no other origin, and the pages keep to it (no inline script, event handler, style attribute or
``javascript:`` URL); what is not HTML gets a policy that allows nothing."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

from citations.models import Source
from streaming.models import StreamSession
from streaming.monitoring import charts
from tests.conftest import log_session

pytestmark = pytest.mark.django_db

# Sources that name no other origin; anything else (a host, https:, *) would.
OWN_SOURCES = {"'self'", "'none'", "data:"}
UNSAFE = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'"}


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.wsgi_request.path}"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


class Inline(HTMLParser):
    """What a strict policy would refuse in a page: inline scripts and styles, event-handler and
    style attributes, ``javascript:`` URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=…>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")
        data_block = values.get("type") == "application/json"  # json_script: not run
        if (tag == "script" and "src" not in values and not data_block) or tag == "style":
            self._in = tag

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.found.append(f"<{self._in}>{data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        self._in = None


@pytest.fixture
def staff(client, django_user_model, user, small_kb):
    log_session(user, 5, ttft_ms=120, duration_ms=900, answer="Maximaal 23 kg [1].")
    log_session(user, 2, status="error", error_code="upstream_error")
    client.force_login(django_user_model.objects.create_superuser("root", password="a-long-pass-123"))
    return client


def pages() -> list[str]:
    source = Source.objects.order_by("pk").first()
    session = StreamSession.objects.order_by("created_at").first()
    return [
        "/",
        "/settings/keys/",
        f"/sources/{source.pk}?passage={source.chunks.first().pk}",
        "/admin/",
        "/admin/streaming/streamsession/",
        f"/admin/streaming/streamsession/{session.pk}/change/",
        "/admin/streaming/streamsession/dashboard/",
        "/admin/streaming/apikey/",
        "/admin/citations/source/",
        f"/admin/citations/source/{source.pk}/change/",
        "/admin/auth/user/add/",
        "/api/docs/",
    ]


def test_every_page_allows_only_our_own_scripts_and_styles(staff):
    for path in pages():
        response = staff.get(path)
        assert response.status_code == 200, path
        directives = policy(response)
        assert directives["default-src"] == ["'self'"], path
        assert directives["script-src"] == ["'self'"], path
        assert directives["style-src"] == ["'self'"], path
        assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
        assert {"base-uri", "form-action"} <= set(directives), path
        for name, sources in directives.items():
            assert not set(sources) - OWN_SOURCES, f"{path}: {name} {sources}"
            assert not set(sources) & UNSAFE, f"{path}: {name} {sources}"


def test_no_page_has_inline_script_handlers_or_styles(staff):
    staff.post("/settings/keys/", {"name": "OpenWebUI"})  # the page then lists a key to revoke
    for path in pages():
        parser = Inline()
        parser.feed(staff.get(path).content.decode())
        assert parser.found == [], path


def test_the_login_pages_too(client):
    for path in ("/accounts/login/", "/admin/login/"):
        response = client.get(path)
        assert response.status_code == 200
        assert policy(response)["script-src"] == ["'self'"]
        parser = Inline()
        parser.feed(response.content.decode())
        assert parser.found == [], path


def test_the_checker_finds_what_the_policy_would_refuse():
    parser = Inline()
    parser.feed(
        '<form onsubmit="return confirm(1)"><a href="javascript:void(0)">x</a>'
        '<span style="color:red">y</span></form><script>alert(1)</script><style>p{}</style>'
        '<script id="s" type="application/json">{"a": 1}</script><script src="/static/x.js"></script>'
    )
    assert len(parser.found) == 5, parser.found


def test_what_is_not_html_gets_a_policy_that_allows_nothing(client, user, access_token):
    headers = {"Authorization": f"Bearer {access_token(user)}"}
    for response in (
        client.get("/api/v1/stream/sessions/", headers=headers),
        client.get("/api/schema/"),
        client.get("/api/v1/nowhere"),  # our JSON 404
        client.get("/healthz"),
    ):
        assert policy(response) == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}


@pytest.mark.django_db(transaction=True)
async def test_a_stream_gets_the_header_and_still_streams(small_kb, user, access_token, async_client):
    response = await async_client.post(
        "/api/v1/stream/query",
        {"query": "Hoe zwaar mag ik tillen?"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {access_token(user)}"},
    )
    assert response.status_code == 200 and response.streaming
    # (django-csp orders the directives by a set: compare them, not the string)
    assert policy(response) == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert b"event: done" in body


def test_a_report_uri_is_added_when_configured(client, settings_with_report_uri):
    assert policy(client.get("/accounts/login/"))["report-uri"] == ["/csp-reports/"]


@pytest.fixture
def settings_with_report_uri(settings):
    directives = {**settings.CONTENT_SECURITY_POLICY["DIRECTIVES"], "report-uri": "/csp-reports/"}
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": directives}


def test_the_status_badges_have_the_charts_colours():
    """The badges' colours live in a stylesheet now (no style attributes): the same as the charts'."""
    css = (Path(settings.BASE_DIR) / "static" / "css" / "admin.css").read_text()
    for status, colour in charts.STATUS_COLORS.items():
        assert re.search(rf"\.status-badge\.status-{status} \{{ background: {colour}; \}}", css), status
