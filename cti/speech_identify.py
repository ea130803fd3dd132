"""Who is calling, from what they say in the first seconds: «Это Иванов Пётр?» offered to the agent (issue 17).

The caller ID finds nobody (a new phone, a company's switchboard, a withheld number) but the customer says their car's
plate, their number or their surname in the first half-minute. :func:`hear` reads one side's words
(``cti/spoken_forms.py`` for plates and numbers, a :class:`SurnameIndex` of the directory's surnames for surnames),
:func:`lookups` says what to ask the directory, and :func:`identify` ranks what it found and returns the one *strong*
match, or none:

* **strong** = one contact found by a plate or a phone number heard with good confidence (:data:`GOOD`) that the
  directory gives to nobody else; or a contact two different facts point to (a surname and a plate, a surname and a
  family's shared number, a doubtful plate and a number). A surname alone never is: «Иванов» is thousands of people,
  and a surname is also a word («Белых», «Лебедь»).
* **never a tie**: the strong contact must lead every other contact the words point to by :data:`MARGIN`; two
  contacts with the same evidence (a number two people share, a plate and a number of two different people) give none.

The answer (:class:`Offer`: the contact, what was heard, why) is only *offered*: the panel shows «Это …?» with the
card, and nothing is attached to the call until the agent clicks.

Surnames in any case: «Петрова», «Петрову», «Петровой» match «Петров» and «Петрова» (the stems of
``cti/stemming.py``, compared in the oblique form: the Snowball stem of «Петров» itself is «петр», which is also
«Петра», the first name, so the nominative is matched as a whole word instead); indeclinable surnames («Сидоренко»,
«Белых») match only as said.

Pure: the directory is a parameter. The daemon (the integration step) calls, on each final result of a call's first
:data:`WINDOW` seconds::

    heard = [hear(words, lane, index, region) for lane, words in words_in_window(finals).items()]
    answers = {lookup: await store.find_contacts(lookup.query, limit=LOOKUP_LIMIT) for lookup in lookups(heard)}
    offer = identify(heard, lambda lookup: answers.get(lookup, ()))

(caching the answers of earlier results: a lookup is a few index probes.) Linear in the words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .directory import Contact, Query, name_key
from .live import Lane, LiveResult, LiveWord, speaker_of
from .spoken_forms import Candidate, SpokenWord, parse_spoken
from .stemming import normalise, stem_word
from .transcripts import Speaker

#: Seconds from the start of the tap in which what is said may identify the caller.
WINDOW = 30.0
#: A plate or number heard at least this sure (0..1) is a fact on its own.
GOOD = 0.6
#: How far the offered contact must lead the next one.
MARGIN = 0.15
#: How many contacts to ask the directory for per lookup (more than one decides nothing; a few show a tie).
LOOKUP_LIMIT = 5
#: The shortest surname worth matching (letters).
MIN_SURNAME = 3

EvidenceKind = Literal["plate", "partial_plate", "phone", "surname"]
LookupKind = Literal["plate", "phone", "surname"]

#: How much each kind of fact weighs in a contact's score.
WEIGHTS: Mapping[EvidenceKind, float] = {"plate": 1.0, "phone": 1.0, "partial_plate": 0.8, "surname": 0.5}


# -- surnames ---------------------------------------------------------------------------------------------------

_POSSESSIVE = ("ов", "ев", "ин", "ын")
_FEMININE_POSSESSIVE = ("ова", "ева", "ина", "ына")
#: Surnames that do not decline: matched only as said.
_INDECLINABLE = ("ых", "их", "о", "е", "и", "у", "ю", "э")
_LEGAL_FORMS = frozenset({"ооо", "оао", "зао", "пао", "ао", "нко", "llc", "ltd", "inc", "gmbh"})
_SOLE_TRADER = frozenset({"ип"})


def _family(surname: str) -> tuple[str, str, bool]:
    """A surname's family: the key every form of it stems to (``петров`` for Петров, Петрова, Петрову…), the whole
    word it is also matched as (the nominative masculine's own stem is too short: «петр» is also «Петра»), and
    whether it declines at all (an indeclinable one is matched only as said)."""
    word = normalise(surname)
    if word.endswith(_FEMININE_POSSESSIVE):
        word = word[:-1]
    if word.endswith(_POSSESSIVE):
        return stem_word(word + "а"), word, True
    stem = stem_word(word)
    if word.endswith(_INDECLINABLE) or len(stem) <= MIN_SURNAME:
        return word, word, False
    return stem, word, True


def surname_of(name: str) -> str | None:
    """The surname in a directory name: the first word of «Иванов Пётр Сергеевич» (1C writes the surname first), the
    last of "John Smith", the owner's of «ИП Петров И. С.»; None for a company («ООО Ромашка»)."""
    words = [w.strip(".,") for w in name.split()]
    words = [w for w in words if w]
    if not words or normalise(words[0]) in _LEGAL_FORMS:
        return None
    if normalise(words[0]) in _SOLE_TRADER:
        words = words[1:]
        if not words:
            return None
    cyrillic = any("\u0400" <= ch <= "\u04ff" for ch in words[0])
    surname = words[0] if cyrillic or len(words) == 1 else words[-1]
    return surname if len(surname) >= MIN_SURNAME and surname.isalpha() else None


@dataclass(frozen=True, slots=True)
class SurnameHeard:
    """A word that is a directory surname: which family (``SurnameIndex``'s key), the surnames of it the directory
    has, the word as said, where, how sure the recogniser was."""

    family: str
    surnames: tuple[str, ...]
    said: str
    word: int
    confidence: float


class SurnameIndex:
    """The directory's surnames, ready to be matched against heard words in any case. Built once from the names
    (:func:`surname_of` of each contact's name), rebuilt when the directory changes; a word costs two dict probes
    and one (cached) stem."""

    def __init__(self, surnames: Iterable[str]) -> None:
        families: dict[str, set[str]] = {}
        self._whole: dict[str, str] = {}
        self._declining: set[str] = set()
        for surname in surnames:
            if len(surname) < MIN_SURNAME or not surname.replace("-", "").isalpha():
                continue
            family, whole, declines = _family(surname)
            families.setdefault(family, set()).add(surname)
            self._whole[whole] = family
            if declines:
                self._declining.add(family)
        self._families = {family: tuple(sorted(names)) for family, names in families.items()}

    def __len__(self) -> int:
        return len(self._families)

    def family_of(self, word: str) -> str | None:
        """The family a word belongs to («Петрову» → ``петров``), or None when it is no known surname."""
        text = normalise(word)
        if len(text) < MIN_SURNAME:
            return None
        whole = self._whole.get(text)
        if whole is not None:
            return whole
        stem = stem_word(text)
        return stem if stem in self._declining else None

    def heard(self, words: Sequence[SpokenWord]) -> list[SurnameHeard]:
        """The words that are directory surnames, in the order said."""
        found: list[SurnameHeard] = []
        for index, word in enumerate(words):
            family = self.family_of(word.text)
            if family is not None:
                found.append(SurnameHeard(family, self._families[family], word.text, index,
                                          round(min(1.0, max(0.0, float(word.conf))), 4)))
        return found


def name_has_family(name: str, family: str) -> bool:
    """Whether a directory name's surname is of the family (a found contact is checked so: the directory's name
    search is by prefix, «петров» also finds «Петровский»; and «Марина» is a first name, not the surname «Марин»)."""
    surname = surname_of(name)
    return surname is not None and _family(surname)[0] == family


# -- what was heard, what to look up --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heard:
    """What one side said in the window that may identify the caller. Word indexes are into that side's words."""

    speaker: Speaker
    candidates: tuple[Candidate, ...] = ()
    surnames: tuple[SurnameHeard, ...] = ()


def hear(words: Sequence[SpokenWord], lane: Lane, surnames: SurnameIndex, region: str = "RU") -> Heard:
    """One lane's words (all of them so far in the window, in order) read for plates, numbers and surnames."""
    forms = parse_spoken(words, region)
    return Heard(speaker_of(lane), forms.candidates, tuple(surnames.heard(words)))


def words_in_window(results: Iterable[LiveResult], seconds: float = WINDOW) -> dict[Lane, list[LiveWord]]:
    """The words of the *final* results that begin within the first ``seconds`` of the tap, per lane, in order
    (partials change; the identification runs on what is settled)."""
    lanes: dict[Lane, list[LiveWord]] = {}
    for result in results:
        if not result.final:
            continue
        kept = [w for w in result.words if w.start < seconds]
        if kept:
            lanes.setdefault(result.lane, []).extend(kept)
    for words in lanes.values():
        words.sort(key=lambda w: w.start)
    return lanes


@dataclass(frozen=True, slots=True)
class Lookup:
    """One question to the directory: a plate (``A123BC77``, or ``A123BC`` in any region), a number
    (``79161234567``) or a surname (its directory form, searched as a name prefix)."""

    kind: LookupKind
    key: str

    @property
    def query(self) -> Query:
        """What ``CallStore.find_contacts`` takes."""
        if self.kind == "plate":
            return Query("plate", self.key)
        if self.kind == "phone":
            return Query("number", self.key)
        return Query("name", name_key(self.key))


def _surname_lookups(heard: SurnameHeard) -> list[Lookup]:
    """The directory forms of a surname family to search by prefix, none a prefix of another («петров» covers
    «петрова»)."""
    keys = sorted({name_key(s) for s in heard.surnames}, key=len)
    kept: list[str] = []
    for key in keys:
        if not any(key.startswith(k) for k in kept):
            kept.append(key)
    return [Lookup("surname", key) for key in kept]


def lookups(heard: Sequence[Heard]) -> tuple[Lookup, ...]:
    """Every question :func:`identify` will ask, once each, in the order heard."""
    seen: dict[Lookup, None] = {}
    for side in heard:
        for cand in side.candidates:
            seen.setdefault(Lookup("plate" if cand.kind == "plate" else "phone", cand.key), None)
        for surname in side.surnames:
            for lookup in _surname_lookups(surname):
                seen.setdefault(lookup, None)
    return tuple(seen)


# -- ranking --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact pointing to a contact: what kind, what was heard (``А 123 ВС 77``, «Петрову»), what was looked up,
    how sure the hearing was, who said it, which of their words, and how many contacts the directory gave for it
    (1: this one only)."""

    kind: EvidenceKind
    said: str
    key: str
    confidence: float
    speaker: Speaker
    words: tuple[int, ...]
    shared: int


@dataclass(frozen=True, slots=True)
class Offer:
    """The contact to offer the agent as «Это …?», never applied without their click: who, how sure (0..1), and
    why (the facts, strongest first)."""

    contact_id: int
    name: str
    confidence: float
    evidence: tuple[Evidence, ...]

    @property
    def heard(self) -> tuple[str, ...]:
        """What was heard that points to the contact, strongest first, each once."""
        return tuple(dict.fromkeys(e.said for e in self.evidence))


def _score(facts: Sequence[Evidence]) -> float:
    """1 - the product of the doubts; a fact shared by several contacts counts for a share of it."""
    doubt = 1.0
    for fact in facts:
        doubt *= 1.0 - WEIGHTS[fact.kind] * fact.confidence / max(1, fact.shared)
    return 1.0 - doubt


def _strong(facts: Sequence[Evidence]) -> bool:
    """A unique plate or number heard well, or two different kinds of fact (a surname and anything else)."""
    if any(f.kind != "surname" and f.shared == 1 and f.confidence >= GOOD for f in facts):
        return True
    kinds = {"plate" if f.kind == "partial_plate" else f.kind for f in facts}
    return len(kinds) >= 2


def identify(heard: Sequence[Heard], find: Callable[[Lookup], Sequence[Contact]]) -> Offer | None:
    """The one strong match to offer, or None (nothing heard, nothing found, only a surname, or a tie).

    ``find`` answers a :class:`Lookup` from the directory (the daemon wires it to answers it fetched for
    :func:`lookups`); contacts without an id are ignored, and those a surname lookup finds must have the surname
    (the directory's name search is by prefix).
    """
    facts: dict[int, dict[tuple[EvidenceKind, str], Evidence]] = {}
    names: dict[int, str] = {}

    def add(contacts: Iterable[Contact], kind: EvidenceKind, said: str, key: str, confidence: float,
            speaker: Speaker, words: tuple[int, ...]) -> None:
        ids = {c.id: c for c in contacts if c.id is not None}
        for contact_id, contact in ids.items():
            assert contact_id is not None
            names[contact_id] = contact.name
            mine = facts.setdefault(contact_id, {})
            had = mine.get((kind, key))
            if had is None or had.confidence < confidence:
                mine[(kind, key)] = Evidence(kind, said, key, confidence, speaker, words, len(ids))

    for side in heard:
        for cand in side.candidates:
            kind: EvidenceKind = ("partial_plate" if cand.partial else "plate") if cand.kind == "plate" else "phone"
            found = find(Lookup("plate" if cand.kind == "plate" else "phone", cand.key))
            add(found, kind, cand.said, cand.key, cand.confidence, side.speaker, cand.words)
        for surname in side.surnames:
            by_name: dict[int | None, Contact] = {}
            for lookup in _surname_lookups(surname):
                for contact in find(lookup):
                    if name_has_family(contact.name, surname.family):
                        by_name.setdefault(contact.id, contact)
            add(by_name.values(), "surname", surname.said, surname.family, surname.confidence, side.speaker,
                (surname.word,))

    if not facts:
        return None
    scored = sorted(((_score(list(f.values())), cid) for cid, f in facts.items()), reverse=True)
    best_score, best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    best_facts = list(facts[best].values())
    if not _strong(best_facts) or best_score - runner_up < MARGIN:
        return None
    ordered = sorted(best_facts, key=lambda f: WEIGHTS[f.kind] * f.confidence / max(1, f.shared), reverse=True)
    return Offer(best, names[best], round(best_score, 4), tuple(ordered))
