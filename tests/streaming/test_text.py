from streaming.text import shorten


def test_short_text_is_kept_with_its_whitespace_collapsed():
    assert shorten("  Hoe zwaar\n mag ik\ttillen? ", 60) == "Hoe zwaar mag ik tillen?"


def test_long_text_is_cut_at_a_word_within_the_limit():
    text = "Een werknemer tilt niet meer dan drieëntwintig kilo zonder hulpmiddel"
    short = shorten(text, 30)
    assert short == "Een werknemer tilt niet meer…"
    assert len(short) <= 30


def test_one_long_word_is_cut_inside_it():
    assert shorten("a" * 50, 10) == "a" * 9 + "…"


def test_text_of_exactly_the_limit_is_kept():
    assert shorten("x" * 10, 10) == "x" * 10
