"""streaming/store/fast_sql.py: each query answers as the ORM does on the same rows (run it with
DATABASE_URL set for PostgreSQL too)."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncDay, TruncHour
from django.forms.models import model_to_dict
from django.utils import timezone

from streaming.models import AnswerFeedback, Conversation, Status, StreamSession, TokenCutoff
from streaming.store import fast_sql
from tests.conftest import log_session

pytestmark = pytest.mark.django_db
POINTS = (50, 95, 99)


def nearest_rank(values: list[int]) -> dict[int, int | None]:
    ordered = sorted(values)
    return {p: ordered[(p * len(ordered) + 99) // 100 - 1] if ordered else None for p in POINTS}


@pytest.fixture
def users(django_user_model):
    return [django_user_model.objects.create_user(f"u{i}", password="x") for i in range(3)]


@pytest.fixture
def log(users):
    """Sessions over three days, of every status, some without a TTFT."""
    statuses = list(Status)
    for i in range(60):
        log_session(
            users[i % 3],
            minutes_ago=i * 71,
            status=statuses[i % len(statuses)],
            ttft_ms=None if i % 4 == 0 else (i * 37) % 500,
            duration_ms=i * 13,
        )
    return timezone.now()


def test_lock_rows_finds_the_rows_the_orm_finds(users):
    if not connection.features.has_select_for_update:
        pytest.skip("no SELECT … FOR UPDATE on this database")
    model = get_user_model()
    wanted = [users[2].pk, users[0].pk, 10**6]
    with transaction.atomic():
        locked = fast_sql.lock_rows(model, wanted)
    assert locked == list(model.objects.filter(pk__in=wanted).order_by("pk").values_list("pk", flat=True))


def test_streams_since_counts_as_the_orm(log, users):
    since = log - timedelta(hours=20)
    ids = [u.pk for u in users]
    orm = (
        StreamSession.objects.filter(user__in=ids, status=Status.COMPLETED, created_at__gte=since)
        .values_list("user")
        .annotate(n=Count("id"))
        .order_by()
    )
    counted = fast_sql.streams_since(ids, Status.COMPLETED.value, since)
    assert counted == Counter(dict(orm)) and sum(counted.values()) > 0


def test_insert_writes_the_rows_bulk_create_writes(users):
    # More rows than one statement takes on SQLite (999 parameters): several batches.
    mine = [Conversation(user=users[0], title=f"t{i}") for i in range(450)]
    theirs = [Conversation(user=users[1], title=f"t{i}") for i in range(450)]
    fast_sql.insert(mine)
    Conversation.objects.bulk_create(theirs)

    def rows(user):
        return sorted(
            (c.title, c.created_at is not None, c.updated_at is not None)
            for c in Conversation.objects.filter(user=user)
        )

    assert rows(users[0]) == rows(users[1]) and len(rows(users[0])) == 450
    assert all(not c._state.adding for c in mine)
    assert set(Conversation.objects.values_list("pk", flat=True)) >= {c.pk for c in mine}


def test_update_row_changes_what_an_orm_update_changes(users):
    one, two = log_session(users[0], status="streaming"), log_session(users[0], status="streaming")
    values = {"status": Status.ERROR, "error_code": "x", "ttft_ms": 12, "finished_at": timezone.now()}
    assert fast_sql.update_row(StreamSession, one.pk, values) is True
    assert StreamSession.objects.filter(pk=two.pk).update(**values) == 1
    one.refresh_from_db()
    two.refresh_from_db()
    skip = {"id", "created_at"}
    assert {k: v for k, v in model_to_dict(one).items() if k not in skip} == {
        k: v for k, v in model_to_dict(two).items() if k not in skip
    }
    gone = uuid.uuid4()
    assert fast_sql.update_row(StreamSession, gone, values) is False
    assert StreamSession.objects.filter(pk=gone).update(**values) == 0


def test_select_in_and_existing_find_what_the_orm_finds(users):
    model = get_user_model()
    meta = model._meta
    fields = [meta.pk, meta.get_field("username"), meta.get_field("is_active")]
    wanted = [users[0].pk, users[2].pk, 10**6]
    orm = model.objects.filter(pk__in=wanted).values_list("pk", "username", "is_active")
    assert set(fast_sql.select_in(model, fields, meta.pk, wanted)) == set(orm)
    assert fast_sql.select_in(model, fields, meta.pk, []) == []
    assert fast_sql.existing(model, wanted) == set(
        model.objects.filter(pk__in=wanted).values_list("pk", flat=True)
    )
    TokenCutoff.objects.create(user=users[1], valid_after=timezone.now())
    assert fast_sql.existing(TokenCutoff, [u.pk for u in users]) == {users[1].pk}


@pytest.mark.parametrize("field", ["ttft_ms", "duration_ms"])
def test_percentiles_are_the_nearest_ranks_of_the_orms_values(log, field):
    for hours in (3, 30, 100):
        since = log - timedelta(hours=hours)
        values = StreamSession.objects.filter(created_at__gte=since, created_at__lt=log).exclude(
            **{f"{field}__isnull": True}
        )
        expected = nearest_rank(list(values.values_list(field, flat=True)))
        assert fast_sql.percentiles(field, since, log, POINTS) == expected
    empty = fast_sql.percentiles(field, log - timedelta(days=90), log - timedelta(days=89), POINTS)
    assert empty == dict.fromkeys(POINTS)


@pytest.mark.parametrize(
    ("unit", "trunc", "fmt"), [("hour", TruncHour, "%Y-%m-%d %H"), ("day", TruncDay, "%Y-%m-%d")]
)
def test_buckets_are_the_orms_hours_and_days_in_utc(log, unit, trunc, fmt):
    since = log - timedelta(days=3)
    window = StreamSession.objects.filter(created_at__gte=since, created_at__lt=log)
    orm = (
        window.annotate(b=trunc("created_at", tzinfo=UTC)).values_list("b", "status").annotate(n=Count("id"))
    )
    expected = {(b.strftime(fmt), status, n) for b, status, n in orm.order_by()}
    assert set(fast_sql.counts_by_bucket(unit, since, log)) == expected

    ttfts = defaultdict(list)
    for created, ttft in window.exclude(ttft_ms__isnull=True).values_list("created_at", "ttft_ms"):
        ttfts[created.astimezone(UTC).strftime(fmt)].append(ttft)
    assert fast_sql.percentiles_by_bucket("ttft_ms", unit, since, log, POINTS) == {
        label: nearest_rank(values) for label, values in ttfts.items()
    }


@pytest.mark.parametrize(
    ("unit", "trunc", "fmt"), [("hour", TruncHour, "%Y-%m-%d %H"), ("day", TruncDay, "%Y-%m-%d")]
)
def test_feedback_buckets_are_the_orms(log, unit, trunc, fmt):
    for i, session in enumerate(StreamSession.objects.order_by("created_at")):
        if i % 3:
            AnswerFeedback.objects.create(session=session, rating="down" if i % 3 == 1 else "up")
    since = log - timedelta(days=2)
    rated = AnswerFeedback.objects.filter(session__created_at__gte=since, session__created_at__lt=log)
    orm = (
        rated.annotate(b=trunc("session__created_at", tzinfo=UTC))
        .values_list("b", "rating")
        .annotate(n=Count("id"))
        .order_by()
    )
    expected = {(b.strftime(fmt), rating, n) for b, rating, n in orm}
    assert expected and set(fast_sql.feedback_by_bucket(unit, since, log)) == expected
