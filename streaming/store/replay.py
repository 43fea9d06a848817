"""A finished stream's SSE events, packed to be kept in the database for replay.

Every encoded event ends with a blank line and holds no other (``sse.encode`` writes one ``data``
line of JSON, which escapes newlines), so the events are kept as one compressed bytes object and
found again by counting blank lines.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

_END = b"\n\n"


def pack(events: Sequence[bytes]) -> bytes:
    # Level 1: SSE text is repetitive ("id: …\nevent: token\ndata: …"), so even the fastest level
    # keeps a fraction of it, at a fraction of the CPU of the default level.
    return zlib.compress(b"".join(events), 1)


def unpack(packed: bytes, start: int = 0) -> bytes:
    """The events from index ``start`` on, as they went over the wire."""
    data = zlib.decompress(packed)
    position = 0
    for _ in range(start):
        end = data.find(_END, position)
        if end < 0:
            return b""
        position = end + len(_END)
    return data[position:]
