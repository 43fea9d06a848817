"""Every hand-written query, in plain SQL built from the models' metadata (tables and columns from
``_meta``, quoted by the backend), running the same on SQLite and PostgreSQL.

Two reasons for plain SQL: the stream start's queries run before every answer's first token, and
the ORM spends far longer compiling each than the database running it (docs/performance.md); the
dashboard's percentiles need window functions the ORM cannot group as we do.
tests/streaming/store/test_fast_sql.py checks each against the ORM asking the same question.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models

from streaming.models import AnswerFeedback, StreamSession


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _column(model: type[models.Model], name: str) -> str:
    return _qn(model._meta.get_field(name).column)


def _when(moment: datetime) -> Any:
    """A ``created_at`` bound as the ORM binds it (SQLite keeps datetimes as text)."""
    return StreamSession._meta.get_field("created_at").get_db_prep_value(moment, connection)


# --- Writes and the stream start ---------------------------------------------------------------


def lock_rows(model: type[models.Model], pks: Sequence[Any]) -> list[Any]:
    """``SELECT … FOR UPDATE`` of these rows, in key order (two callers locking the same rows
    cannot deadlock); the keys found. Only on databases that have it."""
    meta = model._meta
    table, pk = _qn(meta.db_table), _qn(meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk} FROM {table} WHERE {pk} IN ({_placeholders(len(pks))}) ORDER BY {pk} FOR UPDATE",
            [meta.pk.get_db_prep_value(pk_value, connection) for pk_value in pks],
        )
        return [row[0] for row in cursor.fetchall()]


def streams_since(user_ids: Sequence[int], status: str, since: datetime) -> Counter[int]:
    """How many sessions each user has with ``status`` that started at ``since`` or later."""
    table = _qn(StreamSession._meta.db_table)
    user, state, created = (_column(StreamSession, name) for name in ("user", "status", "created_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {user}, COUNT(*) FROM {table} WHERE {user} IN ({_placeholders(len(user_ids))}) "
            f"AND {state} = %s AND {created} >= %s GROUP BY {user}",
            [*user_ids, status, _when(since)],
        )
        return Counter(dict(cursor.fetchall()))


def insert(objs: Sequence[models.Model]) -> None:
    """Insert new rows of one model, as ``bulk_create`` would (the same field preparation, in
    batches the database accepts). An auto-increment key is left to the database and not read
    back: nothing here needs it."""
    if not objs:
        return
    meta = objs[0]._meta
    columns = [f for f in meta.concrete_fields if f is not meta.auto_field]
    head = f"INSERT INTO {_qn(meta.db_table)} ({', '.join(_qn(f.column) for f in columns)}) VALUES "
    row = f"({_placeholders(len(columns))})"
    size = max(1, connection.ops.bulk_batch_size(columns, objs))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            batch = objs[start : start + size]
            cursor.execute(
                head + ", ".join([row] * len(batch)),
                [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in batch for f in columns],
            )
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias


def update_row(model: type[models.Model], pk: Any, values: dict[str, Any]) -> bool:
    """``UPDATE`` one row's fields (by name) to ``values``; False when there is no such row."""
    meta = model._meta
    columns = [meta.get_field(name) for name in values]
    assignments = ", ".join(f"{_qn(f.column)} = %s" for f in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_qn(meta.db_table)} SET {assignments} WHERE {_qn(meta.pk.column)} = %s",
            [f.get_db_prep_save(values[f.name], connection) for f in columns]
            + [meta.pk.get_db_prep_value(pk, connection)],
        )
        return cursor.rowcount > 0


def select_in(
    model: type[models.Model], fields: Sequence[models.Field], key: models.Field, values: Collection[Any]
) -> list[tuple]:
    """The ``fields`` columns (raw, as the driver returns them) of the rows whose ``key`` is one of
    ``values``."""
    if not values:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(_qn(f.column) for f in fields)} FROM {_qn(model._meta.db_table)} "
            f"WHERE {_qn(key.column)} IN ({_placeholders(len(values))})",
            [key.get_db_prep_value(v, connection) for v in values],
        )
        return cursor.fetchall()


def existing(model: type[models.Model], ids: Collection[Any]) -> set[Any]:
    """Which of ``ids`` are primary keys of ``model`` rows."""
    pk = model._meta.pk
    return {row[0] for row in select_in(model, [pk], pk, ids)}


# --- The dashboard (nearest-rank percentiles: the value at rank ceil(p·n/100)) ------------------


def _picks(percentiles: Sequence[int]) -> str:
    return ", ".join(f"MAX(CASE WHEN rn = ({int(p)} * n + 99) / 100 THEN v END)" for p in percentiles)


def percentiles(
    field_name: str, since: datetime, until: datetime, points: Sequence[int]
) -> dict[int, int | None]:
    """Nearest-rank percentiles of a session field over the sessions started in [since, until)."""
    table, created = _qn(StreamSession._meta.db_table), _column(StreamSession, "created_at")
    value = _column(StreamSession, field_name)
    sql = f"""
        WITH ranked AS (
            SELECT {value} AS v, ROW_NUMBER() OVER (ORDER BY {value}) AS rn, COUNT(*) OVER () AS n
            FROM {table}
            WHERE {created} >= %s AND {created} < %s AND {value} IS NOT NULL
        )
        SELECT {_picks(points)} FROM ranked
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [_when(since), _when(until)])
        row = cursor.fetchone()
    return dict(zip(points, row, strict=True))


def _bucket_key(unit: str, table: str = "") -> str:
    """A text key for the hour ("YYYY-MM-DD HH") or day (UTC) a session started in (``table``:
    the sessions' table or alias, where a join makes the column ambiguous)."""
    created = (
        f"{table}.{_column(StreamSession, 'created_at')}" if table else _column(StreamSession, "created_at")
    )
    if connection.vendor == "postgresql":
        fmt = "YYYY-MM-DD HH24" if unit == "hour" else "YYYY-MM-DD"
        return f"to_char({created} AT TIME ZONE 'UTC', '{fmt}')"
    # %% because the query goes through the driver's %s parameter formatting.
    fmt = "%%Y-%%m-%%d %%H" if unit == "hour" else "%%Y-%%m-%%d"
    return f"strftime('{fmt}', {created})"


def counts_by_bucket(unit: str, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
    """(bucket key, status, sessions) of the sessions started in [since, until), per hour or day."""
    key, table = _bucket_key(unit), _qn(StreamSession._meta.db_table)
    created, status = _column(StreamSession, "created_at"), _column(StreamSession, "status")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key} AS bucket, {status}, COUNT(*) FROM {table} "
            f"WHERE {created} >= %s AND {created} < %s GROUP BY 1, 2",
            [_when(since), _when(until)],
        )
        return cursor.fetchall()


def feedback_by_bucket(unit: str, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
    """(bucket key, rating, feedbacks) of the sessions started in [since, until), per hour or day:
    feedback belongs to its answer's time, as on the rest of the dashboard."""
    key, sessions = _bucket_key(unit, "s"), _qn(StreamSession._meta.db_table)
    feedback = _qn(AnswerFeedback._meta.db_table)
    created, pk = _column(StreamSession, "created_at"), _qn(StreamSession._meta.pk.column)
    rating, session = _column(AnswerFeedback, "rating"), _column(AnswerFeedback, "session")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key} AS bucket, f.{rating}, COUNT(*) FROM {sessions} s "
            f"JOIN {feedback} f ON f.{session} = s.{pk} "
            f"WHERE s.{created} >= %s AND s.{created} < %s GROUP BY 1, 2",
            [_when(since), _when(until)],
        )
        return cursor.fetchall()


def percentiles_by_bucket(
    field_name: str, unit: str, since: datetime, until: datetime, points: Sequence[int]
) -> dict[str, dict[int, int | None]]:
    """``percentiles`` per hour or day (bucket key → percentile → value), buckets with values only."""
    key, table = _bucket_key(unit), _qn(StreamSession._meta.db_table)
    created, value = _column(StreamSession, "created_at"), _column(StreamSession, field_name)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH ranked AS (
                    SELECT {key} AS bucket, {value} AS v,
                           ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {value}) AS rn,
                           COUNT(*) OVER (PARTITION BY {key}) AS n
                    FROM {table}
                    WHERE {created} >= %s AND {created} < %s AND {value} IS NOT NULL
                )
                SELECT bucket, {_picks(points)} FROM ranked GROUP BY bucket""",
            [_when(since), _when(until)],
        )
        return {label: dict(zip(points, values, strict=True)) for label, *values in cursor.fetchall()}
