"""Logins are throttled per account and per address on the login page, the admin's login and the
token endpoint: 429 with Retry-After (JSON on the API, a page elsewhere), reset by a success,
shared by every worker (the database), listed and cleared in the admin."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-pass-123"
LIMIT = 3
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _low_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


# ``headers``: the request's, as Django's test client takes them (HTTP_ACCEPT_LANGUAGE="nl").
def page_login(client: Client, url: str, username: str, password: str, **headers: str):
    return client.post(url, {"username": username, "password": password}, **headers)


def token_login(client: Client, url: str, username: str, password: str, **headers: str):
    credentials = {"username": username, "password": password}
    return client.post(url, credentials, content_type="application/json", **headers)


# (url, how to log in, status of a wrong password, status of a right one)
ENDPOINTS = [
    pytest.param("/accounts/login/", page_login, 200, 302, id="login-page"),
    pytest.param("/admin/login/", page_login, 200, 302, id="admin-login"),
    pytest.param(TOKEN_URL, token_login, 401, 200, id="token"),
]


def client_at(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("specialist", password=PASSWORD, is_staff=True)


@pytest.mark.parametrize("url, login, wrong, right", ENDPOINTS)
def test_failures_lock_the_account_out_with_a_429_and_retry_after(staff, url, login, wrong, right):
    client = client_at("10.0.0.1")
    for _ in range(LIMIT - 1):
        assert login(client, url, "specialist", "wrong").status_code == wrong
    refused = login(client, url, "specialist", "wrong")  # the one that reaches the limit
    assert refused.status_code == 429
    # The right password is refused too while locked out, from this address and from another one.
    for other in (client, client_at("10.0.0.2")):
        response = login(other, url, "specialist", PASSWORD)
        assert response.status_code == 429
        assert 1 <= int(response["Retry-After"]) <= 900
    if url.startswith("/api/"):
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "too_many_login_attempts"
    else:
        assert response["Content-Type"].startswith("text/html")
        assert b"Too many login attempts" in response.content
        assert b"Traceback" not in response.content


@pytest.mark.parametrize("url, login, wrong, right", ENDPOINTS)
def test_an_address_is_locked_out_across_usernames(staff, url, login, wrong, right):
    client = client_at("10.0.0.3")
    for n in range(LIMIT):
        login(client, url, f"nobody-{n}", "wrong")
    assert login(client, url, "specialist", PASSWORD).status_code == 429
    # The account itself is not locked: from another address it logs in.
    assert login(client_at("10.0.0.4"), url, "specialist", PASSWORD).status_code == right


@pytest.mark.parametrize("url, login, wrong, right", ENDPOINTS)
def test_a_success_resets_the_count(staff, url, login, wrong, right):
    client = client_at("10.0.0.5")
    for _ in range(2):
        for _ in range(LIMIT - 1):
            assert login(client, url, "specialist", "wrong").status_code == wrong
        assert login(client, url, "specialist", PASSWORD).status_code == right
        if url != TOKEN_URL:
            client.logout()
    assert not AccessAttempt.objects.filter(username="specialist").exists()


def test_the_pages_speak_dutch(staff):
    client = client_at("10.0.0.6")
    for _ in range(LIMIT):
        page_login(client, "/accounts/login/", "specialist", "wrong")
    response = page_login(client, "/accounts/login/", "specialist", PASSWORD, HTTP_ACCEPT_LANGUAGE="nl")
    assert response.status_code == 429
    assert "Te veel inlogpogingen" in response.content.decode()


def test_the_api_refusal_speaks_dutch(staff):
    client = client_at("10.0.0.7")
    for _ in range(LIMIT):
        token_login(client, TOKEN_URL, "specialist", "wrong")
    response = token_login(client, TOKEN_URL, "specialist", PASSWORD, HTTP_ACCEPT_LANGUAGE="nl")
    assert response.status_code == 429
    assert "Te veel mislukte inlogpogingen" in response.json()["error"]["message"]


def test_a_lockout_is_shared_by_every_endpoint_and_worker(staff):
    # The count lives in the database: what one process (or endpoint) counted, all refuse.
    for _ in range(LIMIT):
        page_login(client_at("10.0.0.8"), "/admin/login/", "specialist", "wrong")
    assert token_login(client_at("10.0.0.9"), TOKEN_URL, "specialist", PASSWORD).status_code == 429
    assert page_login(client_at("10.0.1.1"), "/accounts/login/", "specialist", PASSWORD).status_code == 429


def test_forwarded_headers_do_not_dodge_the_address_count(staff):
    client = client_at("10.0.0.10")
    for n in range(LIMIT):
        token_login(client, TOKEN_URL, f"nobody-{n}", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    response = token_login(client, TOKEN_URL, "specialist", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert response.status_code == 429


def test_staff_see_and_clear_lockouts_in_the_admin(staff, django_user_model):
    staff.is_superuser = True
    staff.save()
    victim = django_user_model.objects.create_user("victim", password=PASSWORD)
    attacker = client_at("10.0.0.11")
    for _ in range(LIMIT):
        token_login(attacker, TOKEN_URL, victim.username, "wrong")
    assert token_login(client_at("10.0.0.12"), TOKEN_URL, "victim", PASSWORD).status_code == 429

    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert b"victim" in listing.content and b"10.0.0.11" in listing.content
    attempt = AccessAttempt.objects.get(username="victim")
    cleared = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert cleared.status_code == 302
    assert token_login(client_at("10.0.0.12"), TOKEN_URL, "victim", PASSWORD).status_code == 200


def test_other_ways_in_are_not_counted(staff):
    # Sessions and tokens never go through authenticate(): a locked-out account's existing
    # session keeps working (locking out is about guessing passwords, not about revoking).
    client = client_at("10.0.0.13")
    client.force_login(staff)
    for _ in range(LIMIT):
        token_login(client_at("10.0.0.14"), TOKEN_URL, "specialist", "wrong")
    assert client.get("/api/v1/stream/sessions/").status_code == 200


def test_an_inactive_or_unknown_account_is_a_plain_failure(db):
    get_user_model().objects.create_user("sleeper", password=PASSWORD, is_active=False)
    client = client_at("10.0.0.15")
    assert token_login(client, TOKEN_URL, "sleeper", PASSWORD).status_code == 401
    assert token_login(client, TOKEN_URL, "ghost", PASSWORD).status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_the_page_refusal_under_asgi(staff):
    # Under ASGI axes' middleware runs on the event loop and answers a lockout from a thread.
    from django.test import AsyncClient

    client = AsyncClient(REMOTE_ADDR="10.0.0.16")
    for _ in range(LIMIT):
        await client.post("/accounts/login/", {"username": "specialist", "password": "wrong"})
    response = await client.post("/accounts/login/", {"username": "specialist", "password": PASSWORD})
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
