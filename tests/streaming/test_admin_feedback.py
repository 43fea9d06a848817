"""Feedback on answers in the admin: the stream list's column and filter, the session page, the
dashboard's figures on known data, and the export action."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import Permission

from streaming.models import AnswerFeedback
from tests.conftest import cite, log_session

pytestmark = pytest.mark.django_db
LIST = "/admin/streaming/streamsession/"
DASHBOARD = "/admin/streaming/streamsession/dashboard/"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("staff", password="a-long-pass-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_streamsession"))
    client.force_login(user)
    return user


@pytest.fixture
def sessions(user, small_kb):
    """A 👎 with reasons, a comment and a citation; a 👍; an answer not rated."""
    down = log_session(user, 5, query="Hoe zwaar mag ik tillen?", answer="Maximaal 23 kg [1].")
    cite(down, "Tillen")
    AnswerFeedback.objects.create(
        session=down, rating="down", reasons=["incomplete", "wrong_sources"], comment="Mist de uitzonderingen"
    )
    up = log_session(user, 6, query="Hoe lang pauze bij beeldschermwerk?", answer="Tien minuten.")
    AnswerFeedback.objects.create(session=up, rating="up")
    none = log_session(user, 7, query="Wat is geluidsniveau?")
    return down, up, none


def test_the_list_shows_a_feedback_column_and_filters_by_it(client, staff, sessions):
    listing = client.get(LIST).content.decode()
    assert listing.count('class="field-feedback_mark">👎<') == 1
    assert listing.count('class="field-feedback_mark">👍<') == 1
    assert listing.count('class="field-feedback_mark">—<') == 1
    assert "?feedback=down" in listing  # the filter's choices

    def queries(**params) -> set[str]:
        page = client.get(LIST, params).content.decode()
        return {q for q in ("tillen", "beeldschermwerk", "geluidsniveau") if q in page}

    assert queries(feedback="down") == {"tillen"}
    assert queries(feedback="up") == {"beeldschermwerk"}
    assert queries(feedback="any") == {"tillen", "beeldschermwerk"}
    assert queries(feedback="none") == {"geluidsniveau"}


def test_the_session_page_shows_the_feedback(client, staff, sessions):
    down, _, none = sessions
    page = client.get(f"{LIST}{down.pk}/change/").content.decode()
    assert "Mist de uitzonderingen" in page and "wrong_sources" in page and "down" in page
    assert client.get(f"{LIST}{none.pk}/change/").status_code == 200


def test_the_dashboard_shows_the_counts_the_rate_and_the_latest_down(client, staff, sessions):
    down, _, _ = sessions
    page = client.get(DASHBOARD, {"window": "24h"}).content.decode()
    assert 'id="feedback-up">1<' in page and 'id="feedback-down">1<' in page
    assert 'id="rate-down">50.0 %<' in page
    assert "Rated answers per hour" in page and "👎 rate per hour" in page
    assert f"/admin/streaming/streamsession/{down.pk}/change/" in page
    assert "Mist de uitzonderingen" in page and "incomplete, wrong_sources" in page
    assert "feedback=down" in page  # the cards link to the list, filtered


def test_the_dashboard_without_feedback(client, staff, user):
    log_session(user, 5)
    page = client.get(DASHBOARD).content.decode()
    assert 'id="rate-down">n/a<' in page and "No 👎 in this window." in page


def _action(client, action: str, *sessions):
    return client.post(LIST, {"action": action, "_selected_action": [str(s.pk) for s in sessions]})


def test_the_export_action_downloads_the_selected_sessions_feedback(client, staff, sessions):
    down, up, none = sessions
    response = _action(client, "export_feedback_jsonl", down, none)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert "attachment;" in response["Content-Disposition"]
    (record,) = [json.loads(line) for line in response.content.decode().splitlines()]
    assert record["session_id"] == str(down.pk) and record["rating"] == "down"
    assert record["question"] == "Hoe zwaar mag ik tillen?" and record["answer"] == "Maximaal 23 kg [1]."
    (source,) = record["sources"]
    assert source["title"] == "Tillen" and source["url"] == "https://kb.example/tillen"
    assert "23 kg" in source["text"]

    rows = list(
        csv.DictReader(io.StringIO(_action(client, "export_feedback_csv", down, up).content.decode()))
    )
    assert [row["rating"] for row in rows] == ["down", "up"]
    assert json.loads(rows[0]["reasons"]) == ["incomplete", "wrong_sources"]
    assert json.loads(rows[0]["sources"])[0]["marker"] == 1
