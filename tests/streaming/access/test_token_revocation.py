"""JWTs can be revoked: rotated refresh tokens are blacklisted; a password change, a deactivation
or "log out everywhere" revokes a user's refresh tokens and refuses their older access tokens on
every path (DRF, the streaming views, the OpenAI-compatible API); the API has a logout endpoint."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.test import Client, RequestFactory
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-pass-123"
TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
LOGOUT_URL = "/api/v1/auth/logout/"


def obtain(client, password: str = PASSWORD) -> dict:
    response = client.post(
        TOKEN_URL, {"username": "specialist", "password": password}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def refresh(client, token: str):
    return client.post(REFRESH_URL, {"refresh": token}, content_type="application/json")


def bearer(access: str) -> dict:
    return {"Authorization": f"Bearer {access}"}


def next_second() -> None:
    """A token's ``iat`` is in whole seconds: one issued in the second of a revocation is refused
    too. Wait for the next second before asking for new tokens."""
    time.sleep(1.01 - time.time() % 1)


def refused_everywhere(client, access: str, refresh_token: str) -> None:
    drf = client.get("/api/v1/conversations/", headers=bearer(access))
    assert drf.status_code == 401, drf.content
    assert drf.json()["error"]["code"] == "not_authenticated"
    openai = client.get("/v1/models", headers=bearer(access))
    assert openai.status_code == 401, openai.content
    stream = client.post(
        "/api/v1/stream/query",
        {"query": "Hoe zwaar?"},
        content_type="application/json",
        headers=bearer(access),
    )
    assert stream.status_code == 401, stream.content
    assert stream.json()["error"]["code"] == "not_authenticated"
    refreshed = refresh(client, refresh_token)
    assert refreshed.status_code == 401, refreshed.content
    assert refreshed.json()["error"]["code"] == "not_authenticated"


def accepted(client, access: str) -> None:
    assert client.get("/api/v1/conversations/", headers=bearer(access)).status_code == 200
    assert client.get("/v1/models", headers=bearer(access)).status_code == 200


def test_refresh_rotates_and_blacklists_the_used_refresh_token(client, user):
    tokens = obtain(client)
    first = refresh(client, tokens["refresh"])
    assert first.status_code == 200
    assert first.json()["refresh"] != tokens["refresh"]
    again = refresh(client, tokens["refresh"])
    assert again.status_code == 401 and again.json()["error"]["code"] == "not_authenticated"
    assert refresh(client, first.json()["refresh"]).status_code == 200


def test_set_password_and_save_revokes_the_users_tokens(client, user):
    tokens = obtain(client)
    accepted(client, tokens["access"])
    user.set_password("another-long-pass-456")
    user.save()
    refused_everywhere(client, tokens["access"], tokens["refresh"])
    next_second()
    fresh = obtain(client, "another-long-pass-456")
    accepted(client, fresh["access"])
    assert refresh(client, fresh["refresh"]).status_code == 200


def test_a_password_change_in_the_admin_revokes_the_users_tokens(client, user, django_user_model):
    tokens = obtain(client)
    admin = django_user_model.objects.create_superuser("admin", password="admin-pass-123")
    staff = Client()
    staff.force_login(admin)
    response = staff.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": "changed-by-admin-789", "password2": "changed-by-admin-789", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    refused_everywhere(client, tokens["access"], tokens["refresh"])
    # The form Django's own password-change pages use counts as well.
    next_second()
    tokens = obtain(client, "changed-by-admin-789")
    form = AdminPasswordChangeForm(user, {"password1": "third-pass-0123", "password2": "third-pass-0123"})
    assert form.is_valid(), form.errors
    form.save()
    refused_everywhere(client, tokens["access"], tokens["refresh"])


def test_a_password_hash_upgrade_on_login_is_no_password_change(client, user):
    from streaming.models import TokenCutoff

    tokens = obtain(client)
    user.check_password(PASSWORD)  # may rehash and save: not a change of password
    user.save(update_fields=["last_login"])
    assert not TokenCutoff.objects.filter(user=user).exists()
    accepted(client, tokens["access"])


def test_deactivation_revokes_the_tokens_for_good(client, user):
    tokens = obtain(client)
    user.is_active = False
    user.save()
    user.is_active = True
    user.save()
    refused_everywhere(client, tokens["access"], tokens["refresh"])


async def test_the_streaming_paths_claim_check_refuses_revoked_tokens(user):
    from streaming.access import auth, tokens

    access = await sync_to_async(AccessToken.for_user)(user)
    request = RequestFactory().post("/api/v1/stream/query", headers=bearer(str(access)))
    caller = await auth.identify(request, user_later=True)
    assert caller.claim is not None  # signature and expiry only: the user is read later
    await sync_to_async(tokens.revoke_tokens)(user)
    [refusal] = await sync_to_async(auth.users_of)([caller.claim])
    assert refusal == tokens.REVOKED


def test_log_out_everywhere_on_the_api_keys_page(user):
    api = Client()
    tokens = obtain(api)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get("/settings/keys/")
    assert b'name="logout_everywhere"' in page.content
    assert browser.post("/settings/keys/", {"logout_everywhere": "1"}).status_code == 403  # no CSRF token
    accepted(api, tokens["access"])
    csrf = page.cookies["csrftoken"].value
    response = browser.post("/settings/keys/", {"logout_everywhere": "1", "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    refused_everywhere(api, tokens["access"], tokens["refresh"])
    assert b"no longer work" in browser.get(response.url).content


def test_the_logout_endpoint_blacklists_the_refresh_token(client, user):
    tokens = obtain(client)
    response = client.post(LOGOUT_URL, {"refresh": tokens["refresh"]}, content_type="application/json")
    assert response.status_code == 204, response.content
    refreshed = refresh(client, tokens["refresh"])
    assert refreshed.status_code == 401 and refreshed.json()["error"]["code"] == "not_authenticated"
    bad = client.post(LOGOUT_URL, {"refresh": "nope"}, content_type="application/json")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "not_authenticated"
    missing = client.post(LOGOUT_URL, {}, content_type="application/json")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "invalid_request"


def test_the_logout_endpoint_is_in_the_schema(client):
    spec = client.get("/api/schema/?format=json").json()
    operation = spec["paths"]["/api/v1/auth/logout/"]["post"]
    assert "204" in operation["responses"] and "401" in operation["responses"]


def test_the_refresh_token_of_a_deleted_user_is_a_clear_401(client, user):
    tokens = obtain(client)
    user.delete()
    response = refresh(client, tokens["refresh"])
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("user_id", ["robert'); DROP TABLE", "1.5", "abc", [1], {"a": 1}])
def test_signed_tokens_with_a_user_id_that_is_no_integer_are_a_clear_401(client, user, user_id):
    access = AccessToken.for_user(user)
    access["user_id"] = user_id
    refresh_token = RefreshToken()
    refresh_token["user_id"] = user_id
    for response in (
        client.get("/api/v1/conversations/", headers=bearer(str(access))),
        client.get("/v1/models", headers=bearer(str(access))),
        refresh(client, str(refresh_token)),
        client.post(LOGOUT_URL, {"refresh": str(refresh_token)}, content_type="application/json"),
    ):
        assert response.status_code == 401, response.content
