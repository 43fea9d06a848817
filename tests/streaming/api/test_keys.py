"""The API keys page (create: shown once; revoke: own keys only) and the admin's revoke action."""

import pytest

from streaming.models import ApiKey

pytestmark = pytest.mark.django_db
URL = "/settings/keys/"


def test_login_required(client):
    assert client.get(URL).status_code == 302


def test_create_shows_the_key_once_and_stores_only_its_hash(client, user):
    client.force_login(user)
    response = client.post(URL, {"name": "OpenWebUI"})
    raw = response.context["new_key"]
    assert raw.startswith("evi_") and raw.encode() in response.content
    key = ApiKey.objects.get()
    assert key.key_hash == ApiKey.digest(raw) and raw not in (key.hint, key.key_hash)
    again = client.get(URL)
    assert raw.encode() not in again.content and b"OpenWebUI" in again.content


def test_a_name_is_required(client, user):
    client.force_login(user)
    assert client.post(URL, {"name": "  "}).context["error"]
    assert not ApiKey.objects.exists()


def test_revoke_own_key_only(client, user, django_user_model):
    other = django_user_model.objects.create_user("other", password="a-long-pass-123")
    mine, _ = ApiKey.issue(user, "mine")
    theirs, _ = ApiKey.issue(other, "theirs")
    client.force_login(user)
    assert client.post(URL, {"revoke": theirs.pk}).status_code == 404
    assert client.post(URL, {"revoke": mine.pk}).status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None and theirs.revoked_at is None
    assert b"mine" not in client.get(URL).content


def test_staff_revoke_keys_in_the_admin(client, user, django_user_model):
    key, _ = ApiKey.issue(user, "laptop")
    client.force_login(django_user_model.objects.create_superuser("root", password="a-long-pass-123"))
    response = client.post(
        "/admin/streaming/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get("/admin/streaming/apikey/add/").status_code == 403
