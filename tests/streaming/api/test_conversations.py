"""GET/DELETE /api/v1/conversations/…: the caller's own conversations with their turns."""

import uuid

import pytest

from citations.models import Source
from streaming.models import Conversation, StreamCitation, StreamSession
from tests.conftest import log_session

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/api/v1/conversations/"


@pytest.fixture
def api(client, user, access_token):
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {access_token(user)}"
    return client


def conversation_with_turns(user, title="Hoe zwaar mag ik tillen?"):
    conversation = Conversation.objects.create(user=user, title=title)
    first = log_session(user, 10, conversation=conversation, answer="23 kg [1].")
    log_session(user, 5, conversation=conversation, query="En bij hitte?", status="cancelled", answer="Bij")
    return conversation, first


def test_list_detail_with_turns_and_citations(api, user, small_kb):
    conversation, first = conversation_with_turns(user)
    source = Source.objects.get(title="Tillen")
    StreamCitation.objects.create(
        session=first, marker=1, source=source, title="Tillen", url=source.url, offset=6
    )
    listing = api.get(LIST).json()
    assert listing["count"] == 1 and listing["results"][0]["title"] == "Hoe zwaar mag ik tillen?"
    detail = api.get(f"{LIST}{conversation.id}").json()
    assert [t["query"] for t in detail["turns"]] == ["Hoe zwaar mag ik tillen?", "En bij hitte?"]
    assert [t["status"] for t in detail["turns"]] == ["completed", "cancelled"]  # shown, not replayed
    assert detail["turns"][0]["citations"][0]["source"]["title"] == "Tillen"
    assert detail["turns"][0]["conversation_id"] == str(conversation.id)


def test_newest_first_and_paginated(api, user):
    for n in range(3):
        Conversation.objects.create(user=user, title=f"c{n}")
    body = api.get(LIST, {"page_size": 2}).json()
    assert [c["title"] for c in body["results"]] == ["c2", "c1"] and body["next"]


def test_delete_keeps_the_turns_in_the_stream_log(api, user):
    conversation, first = conversation_with_turns(user)
    assert api.delete(f"{LIST}{conversation.id}").status_code == 204
    assert not Conversation.objects.exists()
    assert StreamSession.objects.filter(pk=first.pk, conversation=None).exists()


def test_another_users_conversation_is_404_for_every_verb(api, django_user_model):
    other = django_user_model.objects.create_user("other", password="a-long-pass-123")
    theirs, _ = conversation_with_turns(other)
    for response in (
        api.get(f"{LIST}{theirs.id}"),
        api.delete(f"{LIST}{theirs.id}"),
        api.get(f"{LIST}{uuid.uuid4()}"),
    ):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert Conversation.objects.filter(pk=theirs.pk).exists()
    assert api.get(LIST).json()["count"] == 0


def test_anonymous_is_401_and_writes_are_405(client, api, user):
    client_anon = type(client)()
    assert client_anon.get(LIST).status_code == 401
    assert api.post(LIST, {}, content_type="application/json").status_code == 405


def test_sessions_filter_by_status_and_date(api, user):
    log_session(user, 60 * 48, status="completed")
    log_session(user, 10, status="error")
    log_session(user, 5, status="completed")
    sessions = "/api/v1/stream/sessions/"
    assert api.get(sessions, {"status": "completed"}).json()["count"] == 2
    from django.utils import timezone

    yesterday = (timezone.now() - timezone.timedelta(days=1)).isoformat()
    assert api.get(sessions, {"since": yesterday}).json()["count"] == 2
    assert api.get(sessions, {"until": yesterday}).json()["count"] == 1
    assert api.get(sessions, {"since": "2020-01-01", "status": "error"}).json()["count"] == 1
    for params in ({"status": "done"}, {"since": "yesterday"}):
        response = api.get(sessions, params)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


def test_staff_see_only_their_own_data_through_the_api(client, access_token, django_user_model):
    # The admin is where staff see everyone's; the API is personal for everybody.
    staff = django_user_model.objects.create_user("boss", password="a-long-pass-123", is_staff=True)
    other = django_user_model.objects.create_user("other", password="a-long-pass-123")
    theirs, their_turn = conversation_with_turns(other)
    mine, _ = conversation_with_turns(staff)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {access_token(staff)}"
    assert [c["id"] for c in client.get(LIST).json()["results"]] == [str(mine.id)]
    assert client.get(f"{LIST}{theirs.id}").status_code == 404
    sessions = client.get("/api/v1/stream/sessions/").json()["results"]
    assert sessions and {s["conversation_id"] for s in sessions} == {str(mine.id)}
    assert client.get(f"/api/v1/stream/sessions/{their_turn.id}").status_code == 404
    assert client.delete(f"/api/v1/stream/sessions/{their_turn.id}").status_code == 404
