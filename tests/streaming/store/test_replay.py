"""streaming/store/replay.py: a finished stream's events, packed and read back from any event."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from asgiref.sync import sync_to_async

from streaming.engine import generate as generation
from streaming.engine.events import DoneEvent, SessionEvent, TokenEvent
from streaming.engine.wire import encode
from streaming.store import reads, replay
from tests.conftest import new_session, parse_sse


def test_unpack_gives_the_same_bytes_from_any_event():
    # Text with newlines, blank lines and a literal backslash-n: JSON escapes them all, so an
    # event still ends at its only blank line.
    texts = ["Regel één\n\nregel twee", "\\n\\n", "tillen [1]", "\r\n\r\n"]
    events = [encode(0, SessionEvent("s", None, "nl", "scripted"))]
    events += [encode(i + 1, TokenEvent(t)) for i, t in enumerate(texts)]
    events.append(encode(len(events), DoneEvent("s", 5, 9, 1, 4, [1])))
    packed = replay.pack(events)
    assert len(packed) < len(b"".join(events))
    for start in range(len(events) + 2):
        assert replay.unpack(packed, start) == b"".join(events[start:])


def test_nothing_packs_to_nothing():
    assert replay.unpack(replay.pack([])) == b""


@pytest.mark.django_db(transaction=True)
async def test_a_cancelled_streams_kept_replay_ends_with_its_terminal_event(small_kb, user, scripted_model):
    scripted_model(["begin ", "nooit"], before=asyncio.Event().wait)
    session = await new_session(user)
    run = generation.start(generation.StreamRequest(session=session))
    for _ in range(500):  # until the first token is out
        if len(run.log.events) >= 2:
            break
        await asyncio.sleep(0.01)
    run.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run.task
    kept = await sync_to_async(reads.replayed_events)(session.id, 0)
    events = parse_sse(kept)
    assert [e[1] for e in events] == ["session", "token", "error"]
    assert events[-1][2]["code"] == "cancelled"
