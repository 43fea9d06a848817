"""Text analysis for full-text search: words -> Snowball stems, the same on every database.

We stem in Python (PyStemmer, Snowball 3) rather than in the database because PostgreSQL's
built-in ``dutch`` configuration uses the older Dutch Snowball stemmer, which leaves ``tillen`` as
``till``; Snowball 3 gives ``til`` for ``tillen``, ``til`` and ``getild``. Stemming once here means
SQLite FTS5 and PostgreSQL index and query exactly the same terms, so both rank alike.
"""

from __future__ import annotations

import re
import threading
import unicodedata

import Stemmer

_WORD = re.compile(r"\w+", re.UNICODE)

# Function words that carry no topic; removing them keeps rankings (which on PostgreSQL have no
# inverse document frequency) from being decided by "de", "het", "the", "is".
STOPWORDS: dict[str, frozenset[str]] = {
    "nl": frozenset(
        """aan al alle alleen als altijd ander andere ben bij daar dan dat de der deze die dit doch doen
        door dus een eens en er ge geen geweest haar had heb hebben heeft hem het hier hij hoe hun iemand
        iets ik in is ja je jij jou jouw kan kon kunnen maar me meer men met mij mijn moet moeten na naar
        niet niets nog nu of om omdat onder ons ook op over reeds te tegen toch toen tot u uit uw van veel
        voor want waren was wat we wel welk welke wie wij wil worden wordt zal ze zelf zich zij zijn zo
        zonder zou zouden mag mogen word waar wanneer waarom hoeveel hoelang graag even""".split()
    ),
    "en": frozenset(
        """a about above after again against all am an and any are as at be because been before being
        below between both but by can could did do does doing down during each few for from further had
        has have having he her here hers him his how i if in into is it its itself just me more most my
        no nor not now of off on once only or other our ours out over own same she should so some such
        than that the their theirs them then there these they this those through to too under until up
        very was we were what when where which while who whom why will with would you your yours
        may might must shall""".split()
    ),
}

# Part of every source's content hash: changing how text is analysed re-indexes unchanged files
# on the next load_knowledge_base.
ANALYSIS_VERSION = "2"

_local = threading.local()


def _stemmer(language: str) -> Stemmer.Stemmer:
    # PyStemmer objects are not thread-safe: one per thread and language.
    cache = getattr(_local, "stemmers", None)
    if cache is None:
        cache = _local.stemmers = {}
    stemmer = cache.get(language)
    if stemmer is None:
        stemmer = cache[language] = Stemmer.Stemmer("dutch" if language == "nl" else "english")
    return stemmer


def words(text: str) -> list[str]:
    """Lower-cased words of at least two characters (or any number)."""
    text = unicodedata.normalize("NFC", text).lower()
    return [w for w in _WORD.findall(text) if len(w) > 1 or w.isdigit()]


def stems(text: str, language: str, *, keep_stopwords: bool = False) -> list[str]:
    """The search terms of ``text``: its words' Snowball stems, in order, duplicates kept.

    Dutch verbs add ``-t`` in the second and third person (``tilt``, ``werkt``), which Snowball
    keeps; we add the form without it as a second term so ``tillen`` also finds ``tilt``.
    Words of up to three letters are kept unstemmed.
    """
    stop = frozenset() if keep_stopwords else STOPWORDS.get(language, frozenset())
    tokens = [w for w in words(text) if w not in stop]
    result: list[str] = []
    stemmed = _stemmer(language).stemWords(tokens)
    for token, stem in zip(tokens, stemmed, strict=True):
        # Words of up to three letters are mostly acronyms (AED, PBM, BHV): the stemmer would
        # mangle them ("aed" -> "a"), so they are kept as they are.
        if len(token) <= 3:
            result.append(token)
            continue
        result.append(stem)
        if language == "nl" and len(stem) >= 4 and stem.endswith("t") and not stem.endswith("tt"):
            result.append(stem[:-1])
    return result


def search_text(text: str, language: str) -> str:
    """What the full-text index stores for a chunk: its stems separated by spaces."""
    return " ".join(stems(text, language))


def query_terms(query: str, language: str) -> list[str]:
    """Distinct search terms of a query, in order; falls back to stopwords if nothing else is left
    (a query such as "Wie ben ik?" still searches for something)."""
    terms = stems(query, language) or stems(query, language, keep_stopwords=True)
    return list(dict.fromkeys(terms))
