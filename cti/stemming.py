"""Words reduced to their stems, so a search or a keyword list finds every form of a word (issue 14).

A customer says «машину», the search box holds «машина»; a complaint list names "refund", the agent said "refunds".
Transcripts, search queries and keyword lists all go through :func:`stems` (one definition), so they meet on the
same stems: the store indexes the stems of every word and matches a query's stems against them; the keyword flags
(``cti/keywords.py``) compare stems too.

The stemmers are Snowball's (the Russian and English algorithms of snowballstem.org), through PyStemmer (C) when it
is installed and the pure-Python ``snowballstemmer`` package otherwise: the same algorithms, the same stems. A word
with Cyrillic letters takes the Russian stemmer, one with Latin letters the English one; anything else (digits,
other scripts: the Korean test model's words) is kept as it is, lower-cased. ``ё`` is read as ``е``: recognisers
and people write either.

Pure: no I/O, no clock. The stems are made of letters and digits only, so they are safe to quote for FTS5 or a
``tsquery`` (the store still binds them as parameters).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from functools import lru_cache

#: A word: a run of letters and digits (``\w`` without the underscore). Hyphens, apostrophes and punctuation split
#: words («что-то» is «что», «то»), as a search box's text would be split.
_WORD = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z]")

#: Longer "words" are not stemmed (nobody says them; a pasted blob should not cost the stemmer time).
MAX_WORD = 64


def _load(language: str) -> Callable[[str], str]:
    """The ``stemWord`` of a fresh stemmer for ``language``: PyStemmer's when importable, else snowballstemmer's."""
    try:
        import Stemmer  # PyStemmer: the C build of the Snowball stemmers

        return Stemmer.Stemmer(language).stemWord  # type: ignore[no-any-return]
    except ImportError:
        import snowballstemmer

        return snowballstemmer.stemmer(language).stemWord  # type: ignore[no-any-return]


class _Stemmers(threading.local):
    """One stemmer per language per thread: a Snowball stemmer object keeps state while it stems a word."""

    def __init__(self) -> None:
        self.russian = _load("russian")
        self.english = _load("english")


_stemmers = _Stemmers()


def normalise(text: str) -> str:
    """Composed characters (NFC: «й» one letter, not «и» and a combining breve), lower case, ``ё`` as ``е``: how
    every word is compared."""
    return unicodedata.normalize("NFC", text).lower().replace("ё", "е")


def words(text: str) -> list[str]:
    """The words of ``text``, normalised (:func:`normalise`), in order."""
    return _WORD.findall(normalise(text))


@lru_cache(maxsize=65536)
def _stem_normalised(word: str) -> str:
    if len(word) > MAX_WORD:
        return word
    if _CYRILLIC.search(word):
        return str(_stemmers.russian(word))
    if _LATIN.search(word):
        return str(_stemmers.english(word))
    return word


def stem_word(word: str) -> str:
    """The stem of one word: «машину» and «машина» give «машин», "cars" and "car" give "car".

    ``word`` is normalised first; text with several words gives the stem of the first one (empty for none).
    """
    found = words(word)
    return _stem_normalised(found[0]) if found else ""


def stems(text: str) -> list[str]:
    """The stems of every word of ``text``, in order (duplicates kept: the store maps positions back to words)."""
    return [_stem_normalised(w) for w in words(text)]
