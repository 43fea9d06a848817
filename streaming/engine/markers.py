"""Citation markers ``[n]`` never break across tokens.

The model streams text in arbitrary pieces, so ``[1]`` can arrive as ``[`` + ``1]``. ``MarkerGate``
holds back only a tail that could still become a marker (``[``, ``[1``, ``[12``, ``[123``) until it
is complete or proven not to be one; everything before it goes out at once. Markers have at most
three digits, so a held tail is never longer than four characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MARKER = re.compile(r"\[(\d{1,3})\]")
_POSSIBLE_MARKER_TAIL = re.compile(r"\[\d{0,3}\Z")


class MarkerGate:
    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> str:
        """The part of the text so far that can be sent now (possibly empty)."""
        buffer = self._pending + text if self._pending else text
        if "[" not in buffer:  # the common case, kept cheap: nothing to hold back
            self._pending = ""
            return buffer
        tail = _POSSIBLE_MARKER_TAIL.search(buffer, max(0, len(buffer) - 4))
        if tail is None:
            self._pending = ""
            return buffer
        self._pending = buffer[tail.start() :]
        return buffer[: tail.start()]

    def flush(self) -> str:
        """Whatever is still held back, at the end of the stream."""
        pending, self._pending = self._pending, ""
        return pending


def markers_in(text: str) -> Iterator[tuple[int, int]]:
    """(marker number, character offset in ``text``) for each complete marker."""
    for match in MARKER.finditer(text):
        yield int(match.group(1)), match.start()
