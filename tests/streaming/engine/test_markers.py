from hypothesis import given
from hypothesis import strategies as st

from streaming.engine.markers import MARKER, MarkerGate, markers_in

# Text made of the pieces that matter: markers, near-markers, brackets, digits, words, newlines,
# multi-byte characters.
pieces = st.sampled_from(
    [
        "[1]",
        "[12]",
        "[123]",
        "[1234]",
        "[",
        "]",
        "[[",
        "1",
        "23",
        "tillen ",
        "ë",
        "€",
        "✓",
        "\n",
        " ",
        "[x]",
        "[]",
    ]
)
texts = st.lists(pieces, max_size=40).map("".join)


def run(chunks: list[str]) -> list[str]:
    gate = MarkerGate()
    tokens = [gate.feed(chunk) for chunk in chunks]
    tokens.append(gate.flush())
    return [t for t in tokens if t]


def splits(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def assert_markers_whole(text: str, tokens: list[str]) -> None:
    """Every complete marker of the whole text lies inside a single token."""
    boundaries = set()
    position = 0
    for token in tokens[:-1]:
        position += len(token)
        boundaries.add(position)
    for match in MARKER.finditer(text):
        assert not any(match.start() < b < match.end() for b in boundaries), (text, tokens)


@given(texts, st.lists(st.integers(min_value=0, max_value=200), max_size=30))
def test_any_split_gives_the_same_text_and_no_token_ends_inside_a_marker(text, cuts):
    tokens = run(splits(text, cuts))
    assert "".join(tokens) == text
    assert_markers_whole(text, tokens)


@given(texts)
def test_one_character_at_a_time(text):
    tokens = run(list(text))
    assert "".join(tokens) == text
    assert_markers_whole(text, tokens)


def test_holds_back_only_the_possible_marker_tail():
    gate = MarkerGate()
    assert gate.feed("Til niet meer dan 23 kg [") == "Til niet meer dan 23 kg "
    assert gate.feed("1") == ""
    assert gate.feed("][2") == "[1]"
    assert gate.feed("] en") == "[2] en"
    assert gate.feed(" [a") == " [a"  # proven not a marker: out at once
    assert gate.feed(" [1234") == " [1234"  # more than three digits: not a marker
    assert gate.feed(" [") == " "
    assert gate.flush() == "["
    assert gate.flush() == ""


def test_markers_in_gives_numbers_and_offsets():
    assert list(markers_in("a [1] b [12][3] [x] [1234]")) == [(1, 2), (12, 8), (3, 12)]
