"""The stream log in the admin: read-only, staff only, delete for superusers; the dashboard."""

import pytest
from django.contrib.auth.models import Permission

from citations.models import Source
from streaming.models import StreamCitation, StreamSession
from tests.conftest import log_session

pytestmark = pytest.mark.django_db
LIST = "/admin/streaming/streamsession/"
DASHBOARD = "/admin/streaming/streamsession/dashboard/"


@pytest.fixture
def session(user, small_kb):
    s = log_session(user, 5, client_kind="web", ttft_ms=120, duration_ms=900, answer="Maximaal 23 kg [1].")
    source = Source.objects.get(title="Tillen")
    StreamCitation.objects.create(
        session=s, marker=1, source=source, title=source.title, url=source.url, offset=15
    )
    return s


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("staff", password="a-long-pass-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_streamsession"))
    return user


def test_staff_see_the_list_detail_and_dashboard(client, staff, session):
    client.force_login(staff)
    listing = client.get(LIST)
    assert listing.status_code == 200
    assert b"Hoe zwaar mag ik tillen?" in listing.content and b"Streaming dashboard" in listing.content
    detail = client.get(f"{LIST}{session.pk}/change/")
    assert detail.status_code == 200
    assert b"Maximaal 23 kg [1]." in detail.content and b"kb.example/tillen" in detail.content
    for window in ("1h", "24h", "7d", "30d"):
        page = client.get(DASHBOARD, {"window": window})
        assert page.status_code == 200
        assert b'id="streams">1<' in page.content
        assert b"<svg" in page.content


def test_list_filters_and_search(client, staff, session):
    client.force_login(staff)
    assert b"tillen" in client.get(LIST, {"status": "completed", "language": "nl", "q": "zwaar"}).content
    assert client.get(LIST, {"error_code": "timeout"}).status_code == 200


def test_logs_cannot_be_added_or_changed(client, staff, session):
    client.force_login(staff)
    assert client.get(f"{LIST}add/").status_code == 403
    response = client.post(f"{LIST}{session.pk}/change/", {"query": "changed"})
    assert response.status_code == 403
    session.refresh_from_db()
    assert session.query == "Hoe zwaar mag ik tillen?"
    assert client.post(f"{LIST}{session.pk}/delete/", {"post": "yes"}).status_code == 403


def test_superusers_may_delete(client, django_user_model, session):
    admin_user = django_user_model.objects.create_superuser("root", password="a-long-pass-123")
    client.force_login(admin_user)
    assert client.post(f"{LIST}{session.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not StreamSession.objects.exists()


def test_others_are_kept_out(client, user, django_user_model, session):
    assert client.get(DASHBOARD).status_code == 302  # anonymous: to the login page
    client.force_login(user)  # not staff
    assert client.get(DASHBOARD).status_code == 302
    assert client.get(LIST).status_code == 302
    no_permission = django_user_model.objects.create_user("clerk", password="a-long-pass-123", is_staff=True)
    client.force_login(no_permission)
    assert client.get(DASHBOARD).status_code == 403


def test_sources_show_how_often_they_were_cited(client, django_user_model, session):
    client.force_login(django_user_model.objects.create_superuser("root", password="a-long-pass-123"))
    page = client.get("/admin/citations/source/")
    assert page.status_code == 200
    assert b'class="field-times_cited">1<' in page.content
