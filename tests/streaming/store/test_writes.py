"""streaming/store/writes.py: the session rows of streams that start together, and the outcomes of
streams that end together, each in one transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from citations.retrieval import retrieve
from streaming.models import Conversation, Status, StreamCitation, StreamReplay, StreamSession
from streaming.store import replay, writes

pytestmark = pytest.mark.django_db(transaction=True)
STALE = timedelta(minutes=2)


def ask(user, query: str = "Hoe zwaar mag ik tillen?", **fields) -> writes.SessionRequest:
    return writes.SessionRequest(
        user_id=user.pk, query=query, language="nl", model_name="scripted", client_kind="api", **fields
    )


def test_the_cap_counts_the_streams_of_the_same_batch(user):
    other = get_user_model().objects.create_user("other", password="other-pass-123")
    results = writes.open_sessions(
        [ask(user), ask(other), ask(user), ask(user)], max_concurrent=2, stale_after=STALE
    )
    assert [type(r).__name__ for r in results] == [
        "StreamSession",
        "StreamSession",
        "StreamSession",
        "TooManyStreams",
    ]
    assert StreamSession.objects.filter(user=user, status=Status.STREAMING).count() == 2
    # ...and the streams already open before it.
    (later,) = writes.open_sessions([ask(other)], max_concurrent=2, stale_after=STALE)
    assert isinstance(later, StreamSession)
    (refused,) = writes.open_sessions([ask(other)], max_concurrent=2, stale_after=STALE)
    assert isinstance(refused, writes.TooManyStreams)


def test_each_new_question_starts_its_own_conversation_and_a_follow_up_continues_one(user):
    stranger = get_user_model().objects.create_user("stranger", password="stranger-pass-123")
    old = Conversation.objects.create(user=user, title="Tillen")
    Conversation.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=1))
    results = writes.open_sessions(
        [
            ask(user, "Eerste vraag"),
            ask(user, "Tweede vraag"),
            ask(user, "En bij hitte?", conversation_id=old.pk),
            ask(stranger, "Niet van mij", conversation_id=old.pk),
            ask(user, "Onbekend", conversation_id=uuid.uuid4()),
            ask(user, "Zonder gesprek", start_conversation=False),
        ],
        max_concurrent=10,
        stale_after=STALE,
    )
    first, second, follow_up, foreign, unknown, bare = results
    assert isinstance(foreign, writes.ConversationNotFound)
    assert isinstance(unknown, writes.ConversationNotFound)
    titles = dict(Conversation.objects.values_list("pk", "title"))
    assert titles[first.conversation_id] == "Eerste vraag"
    assert titles[second.conversation_id] == "Tweede vraag"
    assert follow_up.conversation_id == old.pk
    assert bare.conversation_id is None
    assert Conversation.objects.get(pk=old.pk).updated_at > timezone.now() - timedelta(minutes=1)
    stored = {s.pk: s.conversation_id for s in StreamSession.objects.all()}
    assert stored == {s.pk: s.conversation_id for s in (first, second, follow_up, bare)}


def test_outcomes_of_streams_that_end_together_are_written_with_their_citations(small_kb, user):
    chunks = retrieve("tillen", "nl", 3) + retrieve("hearing protection", "en", 3)
    one, two = writes.open_sessions([ask(user), ask(user)], max_concurrent=10, stale_after=STALE)
    now = timezone.now()
    writes.record_outcomes(
        [
            (
                one.pk,
                writes.Outcome(
                    status=Status.COMPLETED,
                    finished_at=now,
                    duration_ms=900,
                    answer="Til niet meer dan 23 kg [1].",
                    ttft_ms=40,
                    token_events=6,
                    citations=[(1, chunks[0], 24)],
                ),
            ),
            (
                two.pk,
                writes.Outcome(
                    status=Status.CANCELLED,
                    finished_at=now,
                    duration_ms=300,
                    error_code="cancelled",
                    answer="Boven [2]",
                    citations=[(2, chunks[1], 6)],
                ),
            ),
        ]
    )
    rows = {s.pk: s for s in StreamSession.objects.all()}
    assert (rows[one.pk].status, rows[one.pk].answer, rows[one.pk].ttft_ms) == (
        Status.COMPLETED,
        "Til niet meer dan 23 kg [1].",
        40,
    )
    assert (rows[two.pk].status, rows[two.pk].error_code) == (Status.CANCELLED, "cancelled")
    rows = StreamCitation.objects.all()
    citations = {(c.session_id, c.marker, c.chunk_id, c.text, c.page, c.offset) for c in rows}
    # The passage's text and page are copied from the retrieved passage, for when it is gone.
    assert citations == {
        (one.pk, 1, chunks[0].chunk_id, chunks[0].text, None, 24),
        (two.pk, 2, chunks[1].chunk_id, chunks[1].text, None, 6),
    }


def test_a_replay_is_kept_with_its_outcome_until_it_expires(user, monkeypatch):
    one, two, three = writes.open_sessions([ask(user)] * 3, max_concurrent=10, stale_after=STALE)
    now = timezone.now()
    events = (b"id: 0\nevent: token\ndata: {}\n\n", b"id: 1\nevent: done\ndata: {}\n\n")

    def ended(replay_until=None, replay=()) -> writes.Outcome:
        return writes.Outcome(
            status=Status.COMPLETED, finished_at=now, duration_ms=5, replay=replay, replay_until=replay_until
        )

    later = now + timedelta(hours=1)
    writes.record_outcomes(
        [
            (one.pk, ended(later, events)),
            (two.pk, ended()),
            (three.pk, ended(now - timedelta(seconds=1), events)),
        ]
    )
    kept = {r.session_id: bytes(r.events) for r in StreamReplay.objects.all()}
    assert set(kept) == {one.pk, three.pk} and replay.unpack(kept[one.pk]) == b"".join(events)
    # The next write, a minute on, deletes what has expired.
    monkeypatch.setattr(writes.REPLAY_PURGE, "last", now - writes.PURGE_EVERY)
    (four,) = writes.open_sessions([ask(user)], max_concurrent=10, stale_after=STALE)
    writes.record_outcomes([(four.pk, ended(later, events))])
    assert set(StreamReplay.objects.values_list("session_id", flat=True)) == {one.pk, four.pk}


def test_the_outcome_of_a_session_deleted_meanwhile_writes_nothing(small_kb, user):
    """Its user was deleted while it streamed: no citation or replay rows for a missing session."""
    chunks = retrieve("tillen", "nl", 1)
    other = get_user_model().objects.create_user("leaver", password="x")
    mine, theirs = writes.open_sessions([ask(user), ask(other)], max_concurrent=10, stale_after=STALE)
    other.delete()
    now = timezone.now()
    outcome = writes.Outcome(
        status=Status.COMPLETED,
        finished_at=now,
        duration_ms=5,
        answer="[1]",
        citations=[(1, chunks[0], 0)],
        replay=(b"id: 0\nevent: done\ndata: {}\n\n",),
        replay_until=now + timedelta(hours=1),
    )
    writes.record_outcomes([(mine.pk, outcome), (theirs.pk, outcome)])
    assert list(StreamReplay.objects.values_list("session_id", flat=True)) == [mine.pk]
    assert list(StreamCitation.objects.values_list("session_id", flat=True)) == [mine.pk]


def test_the_rows_read_back_as_written_and_nothing_is_written_for_no_request(user, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert writes.open_sessions([], max_concurrent=10, stale_after=STALE) == []
    before = timezone.now()
    (opened,) = writes.open_sessions(
        [ask(user, "Wat zegt de Arbowet over  tillen?")], max_concurrent=10, stale_after=STALE
    )
    row = StreamSession.objects.select_related("conversation").get(pk=opened.pk)
    assert (row.user_id, row.query, row.language, row.model_name, row.client_kind, row.status) == (
        user.pk,
        "Wat zegt de Arbowet over  tillen?",
        "nl",
        "scripted",
        "api",
        Status.STREAMING,
    )
    assert row.created_at == opened.created_at and row.created_at >= before
    assert (row.answer, row.token_events, row.finished_at, row.ttft_ms) == ("", 0, None, None)
    conversation = row.conversation
    assert (conversation.user_id, conversation.title) == (user.pk, "Wat zegt de Arbowet over tillen?")
    assert conversation.created_at >= before and conversation.updated_at >= before
    assert not opened._state.adding  # a saved instance: .save() on it updates
