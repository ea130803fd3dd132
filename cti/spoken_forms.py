"""Licence plates and phone numbers as people *say* them, found in a transcript's words (issue 17).

A customer dictates «а сто двадцать три вэ эс, регион семьдесят семь» or «восемь девятьсот шестнадцать сто двадцать
три сорок пять шестьдесят семь»; a recogniser writes those words, numbers as words, lower case (Vosk), or sometimes
digits and letters (Whisper: ``А123ВС77``). :func:`parse_spoken` turns the words into **candidates**: a plate in the
directory's normal form (``cti/plates.py``: ``A123BC77``, Latin look-alikes), or a phone number ``cti/phones.py``
normalises to a valid number for the region (``79161234567``). Each candidate keeps the indexes of the words it came
from and a confidence, and is only a candidate: ``cti/speech_identify.py`` asks the directory about it and offers the
agent a contact to confirm, never more.

What is understood (one table per kind below, Russian and English):

* **numbers**, dictated the way people group them: «восемь», «девятьсот шестнадцать» (916), «сорок пять», «ноль ноль
  семь», «двадцать ноль» (20, 0), «две семёрки» (77); "one two three", "one twenty three", "one hundred and twenty
  three", "oh" for zero, "double seven", "triple five"; digits written as digits; «плюс семь» / "plus seven".
  A group of words is read as the digits its parts say, and the groups of a run are concatenated: that is how a
  number is dictated, whatever the grouping («восемьсот девяносто один шесть…» is 8916…).
* **quantities are not dictation**: a run of numbers with «тысяч»/"thousand" in it (mileage «сто двадцать тысяч»,
  a year «две тысячи восемнадцатого»), or followed by a unit («рублей», «километров», «утра», «часов», "dollars",
  "miles", "pm"…) is a price, a time or a distance: it gives no candidate at all.
* **letters**: the Russian names of the letters («а», «вэ»/«ве», «ка», «эм», «эн», «о», «эр», «эс», «тэ», «у», «ха»,
  «е»), bare letters («в», «к», «с»: less sure, they are also prepositions), the English names ("bee", "see", "aitch",
  "kay", "em", "oh", "pee", "tee", "ex", "why") and their Russian readings («би», «кей», «икс», «игрек»…), the NATO
  alphabet and its Russian readings ("bravo", «браво»), and spellings by a word («вэ как Василий», «как Анна»,
  "B as in bravo", "B for bravo": the word's first letter; when it disagrees with the letter named before it, the
  word wins, less sure). Only the 12 letters of Russian plates (А В Е К М Н О Р С Т У Х, or the Latin letters they
  look like) make plates; any other letter ends one.
* **hesitations** («э», «ну», «значит», «вот», "uh", "um"…) are skipped; a **repair** («нет», «ой», «вернее»,
  "sorry", "no") drops the group said just before it («восемь девятьсот шестнадцать, ой, девятьсот двадцать шесть…»
  is 8 926…); a **stutter** («сто сто двадцать три») counts once; a number **said twice** is one candidate, surer.
  Each lowers (or, said twice, raises) the confidence.

A **plate** is a letter, three digits, two letters, and a region of two or three digits (``cti/plates.py``'s
standard plate), «регион» / "RUS" allowed around the region; without a region it is still a candidate, ``partial``
(the directory finds it in any region). A **phone number** is any stretch of a run of digits (on the groups'
boundaries) that ``normalize_number`` makes into a number ``phonenumbers`` calls valid; the widest wins.

Pure and fast: no I/O, no clock; one pass over the words to classify them, one over the resulting symbols for plates
(bounded look-ahead) and one for numbers (windows of at most 15 digits): linear in the words, so it can run on every
final result of a call's first seconds (pass it all the lane's words so far: a plate may span two results).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Protocol

import phonenumbers

from .phones import MAX_EXTENSION_LENGTH, normalize_number
from .plates import CYRILLIC_TO_LATIN, PLATE_LETTERS, display_plate, plate_key
from .stemming import normalise

CandidateKind = Literal["plate", "phone"]


class SpokenWord(Protocol):
    """A recognised word: ``cti.live.LiveWord`` and ``cti.transcripts.Word`` both are one."""

    @property
    def text(self) -> str: ...

    @property
    def conf(self) -> float: ...


@dataclass(frozen=True, slots=True)
class HeardWord:
    """A word with its confidence, for text that has no recogniser behind it (a test, a typed transcript)."""

    text: str
    conf: float = 1.0


_TEXT_WORD = re.compile(r"[+]?[^\W_]+(?:['\-][^\W_]+)*")


def heard_words(text: str, conf: float = 1.0) -> list[HeardWord]:
    """The words of written text as a recogniser would give them (punctuation dropped, ``x-ray`` one word)."""
    return [HeardWord(word, conf) for word in _TEXT_WORD.findall(normalise(text))]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A plate or a phone number heard in the words.

    ``key`` is what the directory looks it up by: the plate's ``PlateKey.full`` (``A123BC77``; ``A123BC`` when
    ``partial``) or the normalised number (``79161234567``). ``said`` is what to show the agent ("heard: …"): the
    plate in Cyrillic as printed on it (``А 123 ВС 77``), the number's digits grouped as they were said
    (``8 916 123 45 67``). ``words`` are the indexes of the words it came from (hesitations left out), ``confidence``
    0..1: the words' own confidence, lowered by hesitations, repairs and doubtful letters inside it.
    """

    kind: CandidateKind
    key: str
    said: str
    words: tuple[int, ...]
    confidence: float
    partial: bool = False


@dataclass(frozen=True, slots=True)
class SpokenNumber:
    """A run of dictated digits (``5551234``, an order number ``4279``), whether or not it makes a candidate;
    ``quantity`` when it was a price, a time, a distance or a year (then it makes none)."""

    digits: str
    words: tuple[int, ...]
    quantity: bool = False


@dataclass(frozen=True, slots=True)
class SpokenForms:
    """What :func:`parse_spoken` found: plates and phone numbers (in the order said), and every run of digits."""

    plates: tuple[Candidate, ...] = ()
    phones: tuple[Candidate, ...] = ()
    numbers: tuple[SpokenNumber, ...] = ()

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return self.plates + self.phones


# -- confidence factors ---------------------------------------------------------------------------------------

#: Each hesitation inside a candidate.
HESITATION = 0.95
#: A group dropped by a repair («нет», «ой») inside a candidate.
REPAIR = 0.85
#: A stuttered number word («сто сто»).
STUTTER = 0.9
#: A bare consonant as a letter («в», «с»: also prepositions).
BARE_LETTER = 0.9
#: A spelling word that disagrees with the letter named before it («эм как Николай»).
SPELLING_DISAGREES = 0.8
#: A spelling-alphabet name standing alone as a letter («Ольга»), without «как».
LONE_SPELLING = 0.9
#: A phone number read from part of a longer run of digits.
PART_OF_RUN = 0.9

# -- the vocabulary -------------------------------------------------------------------------------------------

_UNITS = {
    "ноль": 0, "нуль": 0, "один": 1, "одна": 1, "одно": 1, "два": 2, "две": 2, "три": 3, "четыре": 4, "пять": 5,
    "шесть": 6, "семь": 7, "восемь": 8, "девять": 9,
    "zero": 0, "nought": 0, "nil": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9,
}
_TEENS = {
    "десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13, "четырнадцать": 14, "пятнадцать": 15,
    "шестнадцать": 16, "семнадцать": 17, "восемнадцать": 18, "девятнадцать": 19,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50, "шестьдесят": 60, "семьдесят": 70,
    "восемьдесят": 80, "девяносто": 90,
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}
_HUNDREDS = {
    "сто": 100, "двести": 200, "триста": 300, "четыреста": 400, "пятьсот": 500, "шестьсот": 600, "семьсот": 700,
    "восемьсот": 800, "девятьсот": 900,
}
#: «тысяча», "thousand": what makes a run of numbers a quantity.
_MULTIPLIERS = frozenset({
    "тысяча", "тысячи", "тысяч", "тысячу", "тысячей", "тыща", "тыщи", "тыщ", "миллион", "миллиона", "миллионов",
    "миллиард", "миллиарда", "миллиардов", "полтора", "полторы", "половина",
    "thousand", "thousands", "million", "millions", "billion", "grand",
})
#: Digit nouns: «семёрка» (after «две»/«три»/«четыре»: that digit that many times, «три семёрки» 777).
_DIGIT_NOUNS = {
    **dict.fromkeys(("ноля", "нуля", "нолика", "ноликов", "нолей", "нулей", "нолик"), 0),
    **dict.fromkeys(("единица", "единицы", "единиц", "единичка", "единички"), 1),
    **dict.fromkeys(("двойка", "двойки", "двоек"), 2),
    **dict.fromkeys(("тройка", "тройки", "троек"), 3),
    **dict.fromkeys(("четверка", "четверки", "четверок"), 4),
    **dict.fromkeys(("пятерка", "пятерки", "пятерок"), 5),
    **dict.fromkeys(("шестерка", "шестерки", "шестерок"), 6),
    **dict.fromkeys(("семерка", "семерки", "семерок"), 7),
    **dict.fromkeys(("восьмерка", "восьмерки", "восьмерок"), 8),
    **dict.fromkeys(("девятка", "девятки", "девяток"), 9),
}
_REPEATS = {"double": 2, "triple": 3, "дабл": 2, "трипл": 3}
#: Words after a number that make it a price, a time, a distance, an age, a share.
_UNIT_WORDS = frozenset({
    "рубль", "рубля", "рублей", "руб", "копеек", "копейки", "доллар", "доллара", "долларов", "евро",
    "километр", "километра", "километров", "км", "метр", "метра", "метров", "миль", "литр", "литра", "литров",
    "час", "часа", "часов", "минута", "минуты", "минут", "секунд", "секунды", "утра", "вечера", "дня", "ночи",
    "год", "года", "лет", "году", "годов", "месяц", "месяца", "месяцев", "день", "дней", "недели", "недель",
    "процент", "процента", "процентов", "штук", "штуки", "раза", "тысячах", "градусов", "лошадиных",
    "число", "числа", "числу", "января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
    "сентября", "октября", "ноября", "декабря",
    "dollars", "dollar", "bucks", "pounds", "euros", "rubles", "roubles", "cents", "miles", "mile", "meters",
    "metres", "meter", "feet", "foot", "inches", "liters", "litres", "kilometers", "kilometres", "km", "percent",
    "hours", "hour", "minutes", "minute", "years", "year", "days", "day", "weeks", "o'clock", "am", "pm", "times",
    "degrees",
})
_PLUS = frozenset({"плюс", "plus"})
_REGION = frozenset({"регион", "региона", "регион-код", "рус", "раша", "россия", "region", "rus", "russia"})
_HESITATIONS = frozenset({
    "э", "ээ", "эээ", "ээээ", "а-а", "мм", "ммм", "хм", "ну", "значит", "вот", "так", "это", "короче", "типа",
    "щас", "сейчас", "секунду", "секундочку", "да", "пишите", "записывайте", "запишите", "смотрите", "слушайте",
    "uh", "uhm", "um", "umm", "er", "erm", "ah", "hmm", "mm", "well", "so", "okay", "ok", "yes", "yeah", "right",
})
_REPAIRS = frozenset({"нет", "ой", "вернее", "точнее", "извините", "простите", "пардон", "sorry", "no", "oops",
                      "correction", "rather"})
#: «как» in «вэ как Василий»; "as" (+ "in") in "B as in bravo"; "for" only after a letter ("B for bravo").
_SPELL_AS = frozenset({"как", "as"})
_SPELL_FOR = frozenset({"for"})

#: Letter names, Russian and English (and the Russian readings of the English ones) → the plate letter they name,
#: or None for a letter that is on no plate (it ends a plate rather than being skipped).
_LETTER_NAMES: dict[str, str | None] = {
    # Russian names of the letters on plates
    "а": "A", "вэ": "B", "ве": "B", "е": "E", "йе": "E", "ка": "K", "эм": "M", "эн": "H", "о": "O", "эр": "P",
    "эс": "C", "тэ": "T", "те": "T", "у": "Y", "ха": "X", "хэ": "X",
    # bare consonants (a recogniser writing the letter): see BARE_LETTER
    "в": "B", "к": "K", "м": "M", "н": "H", "р": "P", "с": "C", "т": "T", "х": "X",
    # Russian letters on no plate
    **dict.fromkeys(("бэ", "бе", "гэ", "ге", "дэ", "де", "жэ", "же", "зэ", "зе", "и", "й", "эль", "эл", "пэ", "пе",
                     "эф", "цэ", "це", "чэ", "че", "ша", "ща", "ы", "ю", "я", "б", "г", "д", "ж", "з", "л", "п",
                     "ф", "ц", "ч", "ш", "щ"), None),
    # English letter names, and what a recogniser writes for them
    "a": "A", "b": "B", "bee": "B", "be": "B", "c": "C", "see": "C", "sea": "C", "cee": "C", "e": "E", "h": "H",
    "aitch": "H", "haitch": "H", "eitch": "H", "k": "K", "kay": "K", "m": "M", "em": "M", "p": "P", "pee": "P",
    "t": "T", "tee": "T", "tea": "T", "x": "X", "ex": "X", "y": "Y", "why": "Y",
    **dict.fromkeys(("d", "dee", "f", "ef", "eff", "g", "gee", "i", "j", "jay", "l", "el", "n", "en", "q", "cue",
                     "queue", "r", "ar", "s", "es", "ess", "u", "v", "vee", "w", "z", "zed", "zee"), None),
    # Russian readings of English letter names
    "эй": "A", "би": "B", "си": "C", "эйч": "H", "аш": "H", "кей": "K", "пи": "P", "ти": "T", "икс": "X",
    "экс": "X", "игрек": "Y", "уай": "Y",
    # the NATO alphabet, in English and as Russians say it
    "alpha": "A", "alfa": "A", "bravo": "B", "charlie": "C", "echo": "E", "hotel": "H", "kilo": "K", "mike": "M",
    "oscar": "O", "papa": "P", "tango": "T", "x-ray": "X", "xray": "X", "yankee": "Y",
    "альфа": "A", "браво": "B", "чарли": "C", "эхо": "E", "отель": "H", "хотел": "H", "кило": "K", "майк": "M",
    "оскар": "O", "папа": "P", "танго": "T", "икс-рей": "X", "янки": "Y",
    **dict.fromkeys(("delta", "foxtrot", "golf", "india", "juliet", "juliett", "lima", "november", "quebec",
                     "romeo", "sierra", "uniform", "victor", "whiskey", "whisky", "zulu", "дельта", "фокстрот",
                     "гольф", "индия", "джульетта", "лима", "новембер", "квебек", "ромео", "сиерра", "сьерра",
                     "юниформ", "виктор", "виски", "зулу"), None),
}
_BARE = frozenset("вкмнрстх")
#: The Russian spelling alphabet's names for the plate letters: a letter on their own too (less sure), and after «как».
_SPELLING_NAMES = {
    "анна": "A", "антон": "A", "василий": "B", "владимир": "B", "елена": "E", "евгений": "E", "константин": "K",
    "михаил": "M", "мария": "M", "николай": "H", "ольга": "O", "олег": "O", "роман": "P", "семен": "C",
    "сергей": "C", "татьяна": "T", "тимофей": "T", "ульяна": "Y", "харитон": "X",
}
#: "oh"/"o" in English: zero among digits, the letter O among letters.
_OH = frozenset({"oh", "o"})
#: 3-digit region codes in use (a 2-digit region is any of 01..99); see :func:`_region`.
REGIONS_3 = frozenset({
    "102", "113", "116", "121", "122", "123", "124", "125", "126", "134", "136", "138", "142", "147", "150", "152",
    "154", "156", "159", "161", "163", "164", "173", "174", "177", "178", "180", "181", "184", "185", "186", "188",
    "190", "193", "196", "197", "198", "199", "277", "299", "702", "716", "725", "750", "761", "763", "774",
    "777", "790", "797", "799", "977",
})
_SEPARATOR = re.compile(r"[^\w+'\-]+")
_ALNUM_RUNS = re.compile(r"\d+|[^\W\d_]+")

_TokKind = Literal["unit", "teen", "tens", "hundreds", "hundred", "mult", "rep", "noun", "lit", "oh", "letter",
                   "bad_letter", "plus", "region", "unit_word", "hes", "repair", "as", "for", "in", "and", "word"]
_NUMBER_KINDS = frozenset({"unit", "teen", "tens", "hundreds", "hundred", "mult", "rep", "noun", "lit"})


@dataclass(slots=True)
class _Tok:
    kind: _TokKind
    word: int
    text: str
    value: int = 0
    letter: str = ""
    penalty: float = 1.0
    #: More words this token stands for («вэ как Василий» is one letter from two words).
    also: tuple[int, ...] = ()
    #: A letter already spelled by a word: the next «как» does not respell it.
    spelled: bool = False


#: The number words' tables and their kinds, then the words that are one kind each (looked up in this order).
_VALUED: tuple[tuple[Mapping[str, int], _TokKind], ...] = (
    (_UNITS, "unit"), (_TEENS, "teen"), (_TENS, "tens"), (_HUNDREDS, "hundreds"), ({"hundred": 100}, "hundred"),
    (_DIGIT_NOUNS, "noun"), (_REPEATS, "rep"))
_PLAIN: tuple[tuple[frozenset[str], _TokKind], ...] = (
    (_MULTIPLIERS, "mult"), (_PLUS, "plus"), (_REGION, "region"), (_UNIT_WORDS, "unit_word"),
    (_HESITATIONS, "hes"), (_REPAIRS, "repair"), (_SPELL_AS, "as"), (_SPELL_FOR, "for"),
    (frozenset({"in"}), "in"), (frozenset({"and"}), "and"))


def _classify(text: str, index: int) -> list[_Tok]:
    """The token(s) of one word, out of context (a written ``а123вс77`` gives several)."""
    if not text:
        return []
    for table, kind in _VALUED:
        if text in table:
            return [_Tok(kind, index, text, value=table[text])]
    if text in _OH:
        return [_Tok("oh", index, text, letter="O")]
    if text in _LETTER_NAMES:
        letter = _LETTER_NAMES[text]
        if letter is None:
            return [_Tok("bad_letter", index, text)]
        return [_Tok("letter", index, text, letter=letter, penalty=BARE_LETTER if text in _BARE else 1.0)]
    if text in _SPELLING_NAMES:
        return [_Tok("letter", index, text, letter=_SPELLING_NAMES[text], penalty=LONE_SPELLING)]
    for words, kind in _PLAIN:
        if text in words:
            return [_Tok(kind, index, text)]
    if any(ch.isdigit() for ch in text):
        return _written(text, index)
    return [_Tok("word", index, text)]


def _written(text: str, index: int) -> list[_Tok]:
    """A word with digits in it, as Whisper writes them: ``123``, ``+7``, ``а123вс77`` (letters one by one)."""
    tokens: list[_Tok] = []
    if text.startswith("+"):
        tokens.append(_Tok("plus", index, "+"))
        text = text[1:]
    for run in _ALNUM_RUNS.findall(text):
        if run.isdigit():
            if not run.isascii():
                return [_Tok("word", index, text)]
            tokens.append(_Tok("lit", index, run))
            continue
        for ch in run.upper():
            latin = ch.translate(CYRILLIC_TO_LATIN)
            tokens.append(_Tok("letter", index, ch, letter=latin) if latin in PLATE_LETTERS
                          else _Tok("bad_letter", index, ch))
    return tokens


def _first_letter(text: str) -> str | None:
    """The plate letter a spelling word stands for: its first letter, Cyrillic or Latin («Василий», "bravo")."""
    if not text:
        return None
    latin = text[0].upper().translate(CYRILLIC_TO_LATIN)
    return latin if latin in PLATE_LETTERS else None


def _tokens(words: Sequence[SpokenWord]) -> list[_Tok]:
    """Every word's tokens, then what context decides: "a hundred" is 100, «как Василий» a letter."""
    raw: list[_Tok] = []
    for index, word in enumerate(words):
        raw.extend(_classify(_SEPARATOR.sub("", normalise(word.text)).strip("-'"), index))
    out: list[_Tok] = []
    k = 0
    while k < len(raw):
        tok = raw[k]
        after = raw[k + 1] if k + 1 < len(raw) else None
        if tok.text == "a" and after is not None and after.kind in ("hundred", "mult"):
            out.append(_Tok("unit", tok.word, "a", value=1))
        elif tok.kind in ("as", "for"):
            k = _spelling(raw, k, out)
            continue
        else:
            out.append(tok)
        k += 1
    return out


def _spelling(raw: list[_Tok], k: int, out: list[_Tok]) -> int:
    """«вэ как Василий» / "B as in bravo" / «как Анна»: the spelled word's first letter, in place of the letter named
    before it (if any). Returns the index of the token after the spelling; a «как» that spells nothing is a word.

    Without a letter before it, only a spelling-alphabet name or a NATO word is spelled («как Анна», not «как
    дела»); after a letter, any word is («эс как Сергей»), and when the two disagree the word wins, less sure."""
    tok = raw[k]
    j = k + 1
    if tok.kind == "as" and j < len(raw) and raw[j].kind == "in":
        j += 1
    target = raw[j] if j < len(raw) else None
    before = out[-1] if out and out[-1].kind in ("letter", "bad_letter", "oh") and not out[-1].spelled else None
    known = target is not None and (target.text in _SPELLING_NAMES
                                    or (target.kind in ("letter", "bad_letter") and len(target.text) > 2))
    if target is None or target.word == tok.word or (before is None and (tok.kind == "for" or not known)):
        out.append(_Tok("word", tok.word, tok.text))
        return k + 1
    letter = _first_letter(target.text)
    penalty = 1.0
    words: tuple[int, ...] = (target.word,)
    if before is not None:
        out.pop()
        words = (before.word, *before.also, target.word)
        if before.kind == "bad_letter" or before.letter != letter:
            penalty = SPELLING_DISAGREES
    if letter is None:
        out.append(_Tok("bad_letter", words[0], target.text, spelled=True))
    else:
        out.append(_Tok("letter", words[0], target.text, letter=letter, penalty=penalty, also=words[1:],
                        spelled=True))
    return j + 1


# -- symbols: digit groups and letters --------------------------------------------------------------------------

_SymKind = Literal["digits", "oh", "letter", "plus", "region", "break"]


@dataclass(slots=True)
class _Sym:
    kind: _SymKind
    words: list[int]
    digits: str = ""
    letter: str = ""
    penalty: float = 1.0
    hesitations: int = 0
    quantity: bool = False
    #: Digits written as digits (``123``: Whisper), after which a written letter pair (``вс``) is a plate's series.
    written: bool = False

    @property
    def as_digits(self) -> str | None:
        if self.kind == "digits" and not self.quantity:
            return self.digits
        return "0" if self.kind == "oh" else None

    @property
    def as_letter(self) -> str | None:
        return self.letter if self.kind in ("letter", "oh") and self.letter else None


def _next(toks: list[_Tok], j: int) -> int:
    """The index of the first token from ``j`` that is not a hesitation (``len`` when none)."""
    while j < len(toks) and toks[j].kind == "hes":
        j += 1
    return j


def _chunk(toks: list[_Tok], k: int) -> tuple[_Sym, int]:
    """One group of number words from ``toks[k]``: «девятьсот шестнадцать» → ``916``, "one hundred and five" →
    ``105``, «две семёрки» → ``77``; returns the group and the index after it."""
    penalty = 1.0
    # A stutter: «сто сто двадцать» counts the word once.
    while toks[k].kind in ("hundreds", "tens", "teen", "hundred"):
        j = _next(toks, k + 1)
        if j < len(toks) and toks[j].text == toks[k].text:
            k, penalty = j, penalty * STUTTER
        else:
            break
    tok = toks[k]
    words = [tok.word]

    def take(j: int) -> None:
        words.append(toks[j].word)

    end = k + 1
    if tok.kind == "mult":
        return _Sym("digits", words, quantity=True, penalty=penalty), end
    if tok.kind == "lit":
        return _Sym("digits", words, digits=tok.text, penalty=penalty, written=True), end
    if tok.kind == "noun":
        return _Sym("digits", words, digits=str(tok.value), penalty=penalty), end
    if tok.kind == "rep":
        j = _next(toks, end)
        if j < len(toks) and toks[j].kind in ("unit", "noun", "oh"):
            take(j)
            digit = "0" if toks[j].kind == "oh" else str(toks[j].value)
            return _Sym("digits", words, digits=digit * tok.value, penalty=penalty), j + 1
        return _Sym("break", words), end
    value = tok.value
    tail = tok.kind in ("hundreds", "hundred")
    if tok.kind == "unit":
        j = _next(toks, end)
        if j < len(toks) and toks[j].kind == "hundred":  # "five hundred"
            take(j)
            value, end, tail = tok.value * 100, j + 1, True
        elif j < len(toks) and toks[j].kind == "noun" and 2 <= tok.value <= 4:  # «две семёрки»
            take(j)
            return _Sym("digits", words, digits=str(toks[j].value) * tok.value, penalty=penalty), j + 1
        else:
            return _Sym("digits", words, digits=str(value), penalty=penalty), end
    if tail:  # after a hundred: tens and a unit, a teen, or a unit («сто пять»)
        j = _next(toks, end)
        if j < len(toks) and toks[j].kind == "and":
            j = _next(toks, j + 1)
        if j < len(toks) and (toks[j].kind in ("tens", "teen") or (toks[j].kind == "unit" and toks[j].value > 0)):
            take(j)
            value += toks[j].value
            end = j + 1
            if toks[j].kind == "tens":
                end, unit = _unit_after(toks, end, words)
                value += unit
    elif tok.kind == "tens":
        end, unit = _unit_after(toks, end, words)
        value += unit
    return _Sym("digits", words, digits=str(value), penalty=penalty), end


def _unit_after(toks: list[_Tok], end: int, words: list[int]) -> tuple[int, int]:
    """After a tens word, a unit other than zero joins it («сорок пять» 45, not «двадцать ноль»): the index after
    the group and the unit's value (0: none)."""
    j = _next(toks, end)
    if j < len(toks) and toks[j].kind == "unit" and toks[j].value > 0 and toks[j].text != "a":
        words.append(toks[j].word)
        return j + 1, toks[j].value
    return end, 0


def _symbols(toks: list[_Tok]) -> list[_Sym]:
    """Tokens into symbols: number groups, letters, «плюс», «регион», and breaks (any other word). Hesitations
    are skipped and counted on the next symbol; a repair drops the symbol before it; a unit word («рублей») makes
    the digits before it a quantity."""
    syms: list[_Sym] = []
    hesitations, penalty = 0, 1.0
    k = 0
    while k < len(toks):
        tok = toks[k]
        if tok.kind == "hes":
            hesitations += 1
            k += 1
            continue
        if tok.kind == "repair":
            if syms and syms[-1].kind in ("digits", "oh", "letter"):
                syms.pop()
                penalty *= REPAIR
            k += 1
            continue
        if tok.kind in _NUMBER_KINDS:
            sym, k = _chunk(toks, k)
        else:
            k += 1
            if tok.kind == "oh":
                sym = _Sym("oh", [tok.word], digits="0", letter="O")
            elif tok.kind == "letter":
                sym = _Sym("letter", [tok.word, *tok.also], letter=tok.letter, penalty=tok.penalty)
            elif tok.kind == "plus":
                sym = _Sym("plus", [tok.word])
            elif tok.kind == "region":
                sym = _Sym("region", [tok.word])
            else:
                if tok.kind == "unit_word":
                    for before in reversed(syms):
                        if before.kind not in ("digits", "oh", "plus"):
                            break
                        before.quantity = True
                sym = _Sym("break", [tok.word], letter=_letter_pair(tok.text))
        if sym.kind == "break":
            hesitations, penalty = 0, 1.0
        else:
            sym.hesitations, sym.penalty = hesitations, sym.penalty * penalty
            hesitations, penalty = 0, 1.0
        syms.append(sym)
    return syms


def _letter_pair(text: str) -> str:
    """Two plate letters written as one word (``вс``, ``BC``), in Latin; empty for any other word."""
    if len(text) != 2:
        return ""
    latin = text.upper().translate(CYRILLIC_TO_LATIN)
    return latin if all(ch in PLATE_LETTERS for ch in latin) else ""


def _stretches(syms: list[_Sym]) -> list[tuple[int, int]]:
    """The runs of digit symbols (``[start, end)``), each beginning at a «плюс» if one was said; a run with a
    quantity in it is a quantity throughout (and its symbols become breaks, so no plate reads them either)."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(syms):
        if syms[i].kind not in ("digits", "oh", "plus"):
            i += 1
            continue
        j = i + 1
        while j < len(syms) and syms[j].kind in ("digits", "oh"):
            j += 1
        if syms[i].kind == "plus" and j == i + 1:
            i = j
            continue
        runs.append((i, j))
        i = j
    for start, end in runs:
        if any(s.quantity for s in syms[start:end]):
            for s in syms[start:end]:
                s.quantity = True
    return runs


# -- plates ---------------------------------------------------------------------------------------------------


def _digits_from(syms: list[_Sym], j: int, want: int) -> tuple[str, int] | None:
    """Exactly ``want`` digits from whole digit groups at ``j`` (a group is never split): the digits and the index
    after them."""
    got = ""
    while j < len(syms) and len(got) < want:
        digits = syms[j].as_digits
        if digits is None:
            break
        got += digits
        j += 1
    return (got, j) if len(got) == want else None


def _region(syms: list[_Sym], j: int) -> tuple[str, int] | None:
    """The region after a plate's letters: 2 or 3 digits in whole groups. Three when they were said as one number
    («семьсот семьдесят семь»), are a region in use (:data:`REGIONS_3`), or end the digits; otherwise two («семьдесят
    семь», and the «восемь» after it begins something else)."""
    groups: list[tuple[str, int]] = []
    total = 0
    while j < len(syms) and total < 3:
        digits = syms[j].as_digits
        if digits is None or total + len(digits) > 3:
            break
        total += len(digits)
        j += 1
        groups.append((digits, j))
    text = "".join(d for d, _ in groups)
    ends = j >= len(syms) or syms[j].as_digits is None
    if total == 3 and text[0] != "0" and (len(groups) == 1 or text in REGIONS_3 or ends):
        return text, j
    acc = ""
    for digits, after in groups:
        acc += digits
        if len(acc) == 2:
            return (acc, after) if acc != "00" else None
        if len(acc) > 2:
            break
    return None


def _plate_at(syms: list[_Sym], i: int) -> tuple[str, bool, int] | None:
    """A plate beginning at symbol ``i``: its key (Latin, ``A123BC77``), whether it lacks the region, and the
    index after it."""
    first = syms[i].as_letter
    if first is None:
        return None
    digits = _digits_from(syms, i + 1, 3)
    if digits is None:
        return None
    number, j = digits
    series = ""
    if j < len(syms) and syms[j].kind == "break" and syms[j].letter and syms[j - 1].written:
        series, j = syms[j].letter, j + 1  # «а 123 вс 77» as Whisper writes it
    while len(series) < 2:
        letter = syms[j].as_letter if j < len(syms) else None
        if letter is None:
            return None
        series += letter
        j += 1
    after_letters = j
    while j < len(syms) and syms[j].kind == "region":
        j += 1
    region = _region(syms, j)
    if region is None:
        return first + number + series, True, after_letters
    code, j = region
    while j < len(syms) and syms[j].kind == "region":  # "… seven seven RUS"
        j += 1
    return first + number + series + code, False, j


def _plates(syms: list[_Sym], confs: Sequence[float]) -> list[Candidate]:
    found: list[Candidate] = []
    i = 0
    while i < len(syms):
        plate = _plate_at(syms, i)
        if plate is None:
            i += 1
            continue
        text, partial, end = plate
        key = plate_key(text)
        if key is not None:
            found.append(_candidate("plate", key.full if not partial else key.base, display_plate(key.full),
                                    syms[i:end], confs, partial=partial))
        i = end
    return found


# -- phone numbers --------------------------------------------------------------------------------------------

#: The digits a phone number may have: a window shorter than this (8 with «плюс») or longer is not tried.
MIN_NATIONAL, MIN_INTERNATIONAL, MAX_DIGITS = 9, 8, 15


@lru_cache(maxsize=16384)
def phone_key(digits: str, region: str = "RU") -> str | None:
    """The normalised number (``cti/phones.py``) when ``digits`` dial a valid number from ``region``: with a ``+``
    in front, any country's valid number; without, a valid number *of the region* (a run of digits that happens to
    spell an American or Indian number is not what a Russian caller dictated). None otherwise (too short, an
    extension, an unassigned range)."""
    key = normalize_number(digits, region)
    if key is None or len(key) <= MAX_EXTENSION_LENGTH:
        return None
    try:
        parsed = phonenumbers.parse("+" + key, None)
    except phonenumbers.NumberParseException:
        return None
    if digits.startswith("+"):
        return key if phonenumbers.is_valid_number(parsed) else None
    return key if phonenumbers.is_valid_number_for_region(parsed, region) else None


def _phones(syms: list[_Sym], runs: list[tuple[int, int]], confs: Sequence[float], region: str,
            numbers: list[SpokenNumber]) -> list[Candidate]:
    """In each run of digits, from each group on, the widest window of groups that dials a valid number."""
    found: list[Candidate] = []
    for start, end in runs:
        plus = syms[start].kind == "plus"
        first = start + 1 if plus else start
        groups = [syms[g].as_digits or "" for g in range(first, end)]
        quantity = syms[first].quantity if first < end else False
        numbers.append(SpokenNumber("".join(groups), tuple(w for s in syms[start:end] for w in s.words), quantity))
        if quantity:
            continue
        in_run: list[Candidate] = []
        for g in range(len(groups)):
            prefix = "+" if plus and g == 0 else ""
            windows: list[tuple[int, str]] = []
            acc = ""
            for h in range(g, len(groups)):
                acc += groups[h]
                if len(acc) > MAX_DIGITS:
                    break
                windows.append((h, acc))
            minimum = MIN_INTERNATIONAL if prefix else MIN_NATIONAL
            for h, digits in reversed(windows):
                if len(digits) < minimum:
                    break
                key = phone_key(prefix + digits, region)
                if key is None:
                    continue
                used = syms[(start if prefix else first + g):first + h + 1]
                said = " ".join(s.digits for s in used if s.kind != "plus")
                whole = g == 0 and h == len(groups) - 1
                in_run.append(_candidate("phone", key, ("+" if prefix else "") + said, used, confs,
                                         factor=1.0 if whole else PART_OF_RUN))
                break
        # The widest reading of a run is the one dictated: a window inside an earlier-starting one goes (windows
        # come in the order of their first group, so the furthest end so far says whether one covers it).
        furthest = -1
        for cand in in_run:
            if cand.words[-1] > furthest:
                found.append(cand)
                furthest = cand.words[-1]
    return _said_again(found)


def _said_again(found: list[Candidate]) -> list[Candidate]:
    """One candidate per number, in the order first said: a number said again is surer (1 - the product of the
    doubts), and keeps the words of every time it was said."""
    by_key: dict[str, list[Candidate]] = {}
    for cand in found:
        by_key.setdefault(cand.key, []).append(cand)
    merged: list[Candidate] = []
    for key, times in by_key.items():
        if len(times) == 1:
            merged.append(times[0])
            continue
        doubt = 1.0
        for cand in times:
            doubt *= 1.0 - cand.confidence
        words = tuple(sorted({w for cand in times for w in cand.words}))
        merged.append(Candidate("phone", key, times[0].said, words, round(1.0 - doubt, 4)))
    return merged


# -- the whole parse --------------------------------------------------------------------------------------------


def _candidate(kind: CandidateKind, key: str, said: str, syms: Iterable[_Sym], confs: Sequence[float], *,
               partial: bool = False, factor: float = 1.0) -> Candidate:
    """A candidate from its symbols: the mean confidence of its words times its symbols' penalties and a
    :data:`HESITATION` for each hesitation inside it (not before it)."""
    used = list(syms)
    words = tuple(sorted({w for s in used for w in s.words}))
    mean = sum(confs[w] for w in words) / len(words) if words else 0.0
    confidence = mean * factor
    for n, sym in enumerate(used):
        confidence *= sym.penalty * (HESITATION ** sym.hesitations if n else 1.0)
    return Candidate(kind, key, said, words, round(max(0.0, min(1.0, confidence)), 4), partial)


def parse_spoken(words: Sequence[SpokenWord], region: str = "RU") -> SpokenForms:
    """The plates, phone numbers and runs of digits said in ``words`` (one speaker's words in the order said).

    ``region`` is the directory's phone region (``[directory] region``): a national number is read as dialled
    from there. Plates come first in :attr:`SpokenForms.candidates`, each kind in the order said.
    """
    confs = [min(1.0, max(0.0, float(w.conf))) for w in words]
    syms = _symbols(_tokens(words))
    runs = _stretches(syms)
    numbers: list[SpokenNumber] = []
    phones = _phones(syms, runs, confs, region, numbers)
    plates = _plates(syms, confs)
    return SpokenForms(plates=tuple(plates), phones=tuple(phones), numbers=tuple(numbers))


def parse_text(text: str, region: str = "RU", conf: float = 1.0) -> SpokenForms:
    """:func:`parse_spoken` over written text (every word as sure as ``conf``)."""
    return parse_spoken(heard_words(text, conf), region)
