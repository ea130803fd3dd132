"""Which keyword lists a transcript matches: complaint words, competitors' names, whatever a centre watches for.

A list (``[transcription.keywords]``) names words and phrases; a call is flagged with the list's name when one of
them was said. Words are compared on their stems (``cti/stemming.py``, the same stems the search uses), so the list's
«жалоба» flags a customer who said «жалобу», and "refund" flags "refunds". A phrase matches when its stems appear
one after the other in what one side said: both sides' words are interleaved in time, and a phrase is said by one
person. A list may be for one side only (``speaker = "customer"``: an agent saying «жалоба» to apologise for one is
no complaint).

Pure: the transcript and the lists in, the matches out (the store keeps the names with the transcript, and the
daemon pushes ``call.flagged``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cti.stemming import stems
from cti.transcripts import SPEAKERS, Speaker, Transcript, Word


@dataclass(frozen=True, slots=True)
class KeywordList:
    """A named list of words and phrases; ``speaker``: only that side's words count (None: either side)."""

    name: str
    phrases: tuple[str, ...]
    speaker: Speaker | None = None


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    """The first place a list matched: which phrase, said by whom, when (seconds into the recording)."""

    list: str
    phrase: str
    speaker: Speaker
    at_second: float


def keyword_matches(transcript: Transcript, lists: Sequence[KeywordList]) -> list[KeywordMatch]:
    """Each list the transcript matches, once, at its earliest match; in the lists' order."""
    lanes = {speaker: _lane(transcript.words, speaker) for speaker in SPEAKERS}
    found: list[KeywordMatch] = []
    for keyword_list in lists:
        best: KeywordMatch | None = None
        for phrase in keyword_list.phrases:
            wanted = tuple(stems(phrase))
            if not wanted:
                continue
            for speaker, lane in lanes.items():
                if keyword_list.speaker is not None and speaker != keyword_list.speaker:
                    continue
                at = _first(lane, wanted)
                if at is not None and (best is None or at < best.at_second):
                    best = KeywordMatch(keyword_list.name, phrase, speaker, at)
        if best is not None:
            found.append(best)
    return found


def matched_lists(transcript: Transcript, lists: Sequence[KeywordList]) -> tuple[str, ...]:
    """The names of the lists the transcript matches (what the store keeps as the call's flags)."""
    return tuple(match.list for match in keyword_matches(transcript, lists))


def _lane(words: Sequence[Word], speaker: Speaker) -> list[tuple[str, float]]:
    """One side's stems in time order, each with the start of the word it came from (a word may give several: a
    recogniser's "что-то" is two stems)."""
    out: list[tuple[str, float]] = []
    for word in sorted((w for w in words if w.speaker == speaker), key=lambda w: w.start):
        out.extend((stem, word.start) for stem in stems(word.text))
    return out


def _first(lane: list[tuple[str, float]], wanted: tuple[str, ...]) -> float | None:
    """The start of the first run of ``wanted`` stems in ``lane``, one right after the other; None: not said."""
    size = len(wanted)
    for i in range(len(lane) - size + 1):
        if lane[i][0] == wanted[0] and all(lane[i + k][0] == wanted[k] for k in range(1, size)):
            return lane[i][1]
    return None
