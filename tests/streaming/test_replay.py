"""streaming/replay.py: a finished stream's events, packed and read back from any event."""

from __future__ import annotations

from streaming import replay
from streaming.sse import DoneEvent, SessionEvent, TokenEvent, encode


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
