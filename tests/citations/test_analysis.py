from citations.analysis import query_terms, search_text, stems


def test_dutch_verb_forms_share_a_stem():
    til = set(stems("tillen", "nl"))
    for form in ("tilt", "til", "getild"):
        assert til & set(stems(form, "nl")), form


def test_dutch_plural_compound_matches_singular():
    assert stems("werkplekken", "nl") == stems("werkplek", "nl")


def test_english_stems():
    assert stems("lifting lifts", "en") == ["lift", "lift"]


def test_stopwords_are_dropped_but_a_stopword_only_query_still_searches():
    assert query_terms("Hoe zwaar mag ik tillen?", "nl") == ["zwaar", "til"]
    assert query_terms("Wie ben ik?", "nl")  # nothing but stopwords: search them anyway


def test_search_text_is_space_separated_stems():
    assert search_text("Werkplekken en beeldschermen", "nl") == "werkplek beeldscherm"


def test_non_ascii_words_survive():
    assert stems("geïnstalleerde ideeën", "nl")
    assert stems("café naïve", "en")
