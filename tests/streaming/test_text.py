from streaming.text import plain_text, shorten


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


def test_plain_text_drops_the_markdown_syntax():
    markdown = (
        "## Tillen\n\nDe **werkgever** beoordeelt [het risico](https://kb.example/x) met `NIOSH`.\n\n"
        "| Last | Advies |\n|---|:--:|\n| 25 kg | ~~alleen~~ samen |\n\n1. Eerst\n2. Dan\n\n> Let op\n\n"
        "```\nmax = 23\n```\n\n![een ladder](ladder.png) &amp; klaar"
    )
    assert plain_text(markdown) == (
        "Tillen De werkgever beoordeelt het risico met NIOSH. Last Advies 25 kg alleen samen "
        "Eerst Dan Let op max = 23 een ladder & klaar"
    )


def test_plain_text_keeps_a_documents_html_as_text_and_any_links_text_only():
    assert (
        plain_text('Zie <img src=x onerror="a"> en <b>dit</b>') == 'Zie <img src=x onerror="a"> en <b>dit</b>'
    )
    assert plain_text("[klik](javascript:alert(1)) hier") == "klik hier"
