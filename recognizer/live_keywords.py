"""Keyword lists matched live: on each final of a call in progress, which lists it says, with the words' times.

The daemon keeps one :class:`LiveKeywordWatch` per tapped call and gives it every final (``LiveResult.final``) of the
call's lanes as it comes; each list the call matches is reported once, at its first match, so ``call.flagged`` goes to
the admins while the call is still up (the after-call transcript flags the call again in the store, as before).

The matching is ``cti/keywords.py``'s own (the same stems as the search, phrases said by one side, a list for one side
only): a final is turned into a :class:`cti.transcripts.Transcript` and handed to
:func:`cti.keywords.keyword_matches`. What live audio adds: a phrase may straddle two finals (the customer pauses
between «верните» and «деньги», and the lane's pause ends an utterance), so each side's last
:data:`CONTEXT_WORDS` words are kept and matched with the next final of that side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from cti.keywords import KeywordList, keyword_matches
from cti.live import LiveResult
from cti.stemming import stems
from cti.transcripts import Speaker, Transcript, Word

#: Words of each side kept from earlier finals, so a phrase cut by a pause still matches (longer than any phrase).
CONTEXT_WORDS = 16


@dataclass(frozen=True, slots=True)
class LiveKeywordHit:
    """A list matched in a call in progress: which phrase, said by whom, and where its words lie in the tap."""

    list: str
    phrase: str
    speaker: Speaker
    #: The first matched word's start and the last one's end (seconds from the tap's start).
    start: float
    end: float
    #: The words that matched, as the recogniser wrote them.
    words: tuple[str, ...]


class LiveKeywordWatch:
    """One call's keyword lists, matched on its finals; each list reported once per call."""

    def __init__(self, lists: Sequence[KeywordList]) -> None:
        self._lists = tuple(lists)
        self._reported: set[str] = set()
        self._context: dict[Speaker, deque[Word]] = {}

    @property
    def reported(self) -> frozenset[str]:
        """The lists already reported for this call."""
        return frozenset(self._reported)

    def final(self, result: LiveResult) -> list[LiveKeywordHit]:
        """The lists this final matches (with the side's words just before it) and that were not reported yet, in
        the lists' order. Partials are not matched: their words may still change."""
        if not result.final or not result.words:
            return []
        speaker = result.speaker
        context = self._context.setdefault(speaker, deque(maxlen=CONTEXT_WORDS))
        words = [*context, *(Word(speaker, w.text, w.start, w.end, w.conf) for w in result.words)]
        context.extend(words[len(context):])
        pending = [kl for kl in self._lists if kl.name not in self._reported]
        if not pending:
            return []
        transcript = Transcript(words=tuple(words), engine="vosk", model="", duration=words[-1].end)
        hits = []
        for match in keyword_matches(transcript, pending):
            span = _span(words, match.at_second, len(stems(match.phrase)))
            self._reported.add(match.list)
            hits.append(LiveKeywordHit(match.list, match.phrase, match.speaker, span[0].start, span[-1].end,
                                       tuple(w.text for w in span)))
        return hits


def _span(words: Sequence[Word], at: float, size: int) -> list[Word]:
    """The words a match of ``size`` stems starting at ``at`` covers (a word may give several stems)."""
    first = next(i for i, w in enumerate(words) if w.start == at)
    span: list[Word] = []
    count = 0
    for word in words[first:]:
        span.append(word)
        count += len(stems(word.text))
        if count >= size:
            break
    return span
