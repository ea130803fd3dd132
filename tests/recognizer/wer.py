"""Word error rate, the way the speech set's figures are scored: normalise both texts, then count word edits.

``../shared/speech/refs.jsonl`` writes numbers as words ("go forward ten meters") and has no punctuation; Whisper
writes "Go forward 10 meters." Scoring the raw strings would count spelling, not hearing, so both sides go through
:func:`normalise` first: lower case, ``ё`` as ``е``, hyphenated words split (``ill-disposed``), punctuation
dropped (a word's inner apostrophe kept), every number written out in words by ``num2words`` in the text's language
(``10`` -> ``ten``, ``4,279`` -> ``four thousand, two hundred and seventy-nine``), and the English titles
Whisper abbreviates spelled out (``Mr.`` -> ``mister``), as ``eval_vosk.py``'s references spell them. The word error
rate is the word-level edit distance (substitutions + deletions + insertions) over all the references' words,
summed over the set: one figure, as ``eval_vosk.py`` prints it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from num2words import num2words  # type: ignore[import-untyped]

#: Abbreviations spelled out on both sides (the references spell them).
_TITLES = {"en": {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def _spell_number(match: re.Match[str], lang: str) -> str:
    token = match.group(0)
    grouped = re.fullmatch(r"\d{1,3}(?:,\d{3})+", token)
    value: float | int
    if grouped:
        value = int(token.replace(",", ""))
    elif re.fullmatch(r"\d+", token):
        value = int(token)
    else:
        value = float(token.replace(",", "."))
    return f" {num2words(value, lang=lang)} "


def normalise(text: str, lang: str = "en") -> list[str]:
    """``text``'s words as scored: see the module's docstring."""
    text = text.lower().replace("ё", "е")
    text = _NUMBER.sub(lambda m: _spell_number(m, lang), text)
    text = text.replace("’", "'")
    words = _WORD.findall(text.replace("-", " "))
    titles = _TITLES.get(lang, {})
    return [titles.get(w, w) for w in words]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Substitutions + deletions + insertions turning ``ref`` into ``hyp`` (Levenshtein over words)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def word_error_rate(pairs: Iterable[tuple[str, str]], lang: str = "en") -> tuple[float, int, int]:
    """``(wer, edits, reference words)`` over ``(reference, hypothesis)`` pairs, both normalised."""
    edits = words = 0
    for ref, hyp in pairs:
        r, h = normalise(ref, lang), normalise(hyp, lang)
        edits += edit_distance(r, h)
        words += len(r)
    return (edits / words if words else 0.0), edits, words
