"""Which language a text is in, restricted to the two we answer in: Dutch and English.

Lingua is used because it is accurate on short inputs ("Hoe zwaar mag ik tillen?"); restricting it
to two languages makes it both faster and more accurate. Its models load lazily (about half a
second): ``warm_up()`` does that at server start so no request pays for it.
"""

from __future__ import annotations

import functools
from typing import Literal

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

LanguageCode = Literal["nl", "en"]
SUPPORTED: tuple[LanguageCode, ...] = ("nl", "en")
# Most users are Dutch specialists: a text with no clue either way (a bare acronym) is Dutch.
DEFAULT: LanguageCode = "nl"

_CODES: dict[Language, LanguageCode] = {Language.DUTCH: "nl", Language.ENGLISH: "en"}


@functools.cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*_CODES).with_preloaded_language_models().build()


def detect_language(text: str) -> LanguageCode:
    detected = _detector().detect_language_of(text)
    return _CODES.get(detected, DEFAULT) if detected is not None else DEFAULT


def resolve_language(text: str, requested: str | None) -> LanguageCode:
    """An explicit ``nl``/``en`` from the client wins; ``auto``/``None`` means detect."""
    if requested in SUPPORTED:
        return requested  # type: ignore[return-value]
    return detect_language(text)


def warm_up() -> None:
    detect_language("Hoe zwaar mag ik tillen?")
