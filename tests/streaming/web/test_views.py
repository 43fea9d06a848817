import pytest

pytestmark = pytest.mark.django_db


def test_chat_page_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_chat_page_for_a_logged_in_user(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ann", password="pw-123456789"))
    response = client.get("/")
    assert response.status_code == 200
    assert b"Log out" in response.content


def test_chat_page_only_answers_get(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ann", password="pw-123456789"))
    assert client.post("/").status_code == 405


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content
