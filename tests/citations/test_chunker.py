from citations.chunker import MAX_WORDS, chunk_markdown


def words(n: int, word: str = "woord") -> str:
    return " ".join([word] * n)


def test_heading_path_follows_the_heading_levels():
    chunks = chunk_markdown(
        "# Titel\n\nIntro.\n\n## Deel A\n\nTekst A.\n\n### Sub\n\nTekst sub.\n\n## Deel B\n\nTekst B.\n"
    )
    assert [(c.heading_path, c.text) for c in chunks] == [
        ("Titel", "Intro."),
        ("Titel > Deel A", "Tekst A."),
        ("Titel > Deel A > Sub", "Tekst sub."),
        ("Titel > Deel B", "Tekst B."),
    ]
    assert [c.position for c in chunks] == [0, 1, 2, 3]


def test_paragraphs_are_packed_up_to_the_maximum():
    paragraphs = "\n\n".join(words(120) for _ in range(5))
    chunks = chunk_markdown("## S\n\n" + paragraphs)
    sizes = [len(c.text.split()) for c in chunks]
    assert sum(sizes) == 600
    assert all(size <= MAX_WORDS for size in sizes)
    assert all(size >= 100 for size in sizes)


def test_a_long_paragraph_is_cut_at_sentence_ends():
    sentence = words(49) + "."
    chunks = chunk_markdown(" ".join([sentence] * 14))  # 700 words, no headings
    assert len(chunks) >= 3
    assert all(len(c.text.split()) <= MAX_WORDS * 1.2 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    assert chunks[0].heading_path == ""


def test_a_paragraph_without_full_stops_is_cut_at_words():
    chunks = chunk_markdown(words(650))
    assert sum(len(c.text.split()) for c in chunks) == 650
    assert all(len(c.text.split()) <= MAX_WORDS * 1.2 for c in chunks)


def test_short_tail_merges_into_the_chunk_before():
    chunks = chunk_markdown("## S\n\n" + words(250) + "\n\n" + words(20))
    assert len(chunks) == 1


def test_lists_stay_together_and_code_fences_hide_headings():
    chunks = chunk_markdown("## S\n\n- een\n- twee\n\n```\n# not a heading\n```\n")
    assert len(chunks) == 1
    assert "- een\n- twee" in chunks[0].text
    assert "# not a heading" in chunks[0].text


def test_empty_document_has_no_chunks():
    assert chunk_markdown("# Only a title\n") == []
