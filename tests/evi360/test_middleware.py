"""evi360/middleware.py: Django's middleware hooks run on the event loop under ASGI, and the ones
that write (a modified session, flash messages) still reach the database through a thread."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.test import AsyncClient
from django.utils import deprecation

from evi360 import middleware

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    """The hooks sent to a thread, by name (ours, and Django's MiddlewareMixin should it be back)."""
    sent: list[str] = []

    def counting(fn, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(f"{type(fn.__self__).__name__}.{fn.__name__}")
        return sync_to_async(fn, **kwargs)

    monkeypatch.setattr(middleware, "sync_to_async", counting)
    monkeypatch.setattr(deprecation, "sync_to_async", counting)
    return sent


async def test_a_request_that_writes_nothing_takes_no_thread_hop(hops, user):
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    response = await client.get("/api/v1/stream/sessions/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"  # the response hooks ran
    assert "default-src 'none'" in response["Content-Security-Policy"]  # django-csp's too
    assert hops == []


async def test_a_login_saves_its_session_through_a_thread(hops, user):
    client = AsyncClient()
    page = await client.get("/accounts/login/")
    assert page.status_code == 200
    response = await client.post(
        "/accounts/login/", {"username": "specialist", "password": "a-long-pass-123"}
    )
    assert response.status_code == 302
    assert "SessionMiddleware.process_response" in hops
    assert await Session.objects.acount() == 1
    assert (await client.get("/")).status_code == 200  # the saved session logs the next request in


async def test_csrf_still_refuses_a_form_post_without_its_token(user):
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.post(
        "/accounts/login/", {"username": "specialist", "password": "a-long-pass-123"}
    )
    assert response.status_code == 403


async def test_flash_messages_survive_the_redirect(hops, user):
    """Django's password change view adds no message; the admin's does: a message stored on one
    response is read on the next, through the session."""
    from django.contrib.auth import get_user_model

    staff = await get_user_model().objects.acreate_superuser("boss", password="a-long-pass-456")
    client = AsyncClient()
    await sync_to_async(client.force_login)(staff)
    response = await client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": "specialist2",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:500]
    assert "MessageMiddleware.process_response" in hops
    page = await client.get(response["Location"])
    assert b"was changed successfully" in page.content
