"""The car-make directory, and finding a make however it was typed.

Agents type makes in Russian or in English, and often in the wrong keyboard layout: «ещнщеф» is
"toyota" typed with the Russian layout on, «Njqjnf» is «Тойота» typed with the English one. A query is
tried as typed and through both layout swaps, against every name and alias, ignoring case, spaces,
hyphens and «ё»; a unique prefix is enough (``тойо``, ``merc``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

#: Canonical name → aliases (Russian spellings, abbreviations, old names). The canonical name is what
#: the directory stores and shows.
MAKES: dict[str, tuple[str, ...]] = {
    "Audi": ("Ауди",),
    "BMW": ("БМВ", "бэмвэ", "бумер"),
    "Changan": ("Чанган",),
    "Chery": ("Чери",),
    "Chevrolet": ("Шевроле", "Шевролет", "Chevy"),
    "Citroen": ("Ситроен", "Citroën"),
    "Daewoo": ("Дэу", "Деу"),
    "Datsun": ("Датсун",),
    "Exeed": ("Эксид",),
    "Fiat": ("Фиат",),
    "Ford": ("Форд",),
    "GAZ": ("ГАЗ", "Газель"),
    "Geely": ("Джили",),
    "Great Wall": ("Грейт Вол", "Грейт Волл"),
    "Haval": ("Хавал", "Хавейл"),
    "Honda": ("Хонда",),
    "Hyundai": ("Хендай", "Хундай", "Хёндэ", "Хендэ", "Хюндай"),
    "Infiniti": ("Инфинити",),
    "Jeep": ("Джип",),
    "Kia": ("Киа", "Кия"),
    "Lada": ("Лада", "ВАЗ", "VAZ", "Жигули", "AvtoVAZ", "АвтоВАЗ"),
    "Land Rover": ("Ленд Ровер", "Лэнд Ровер", "Range Rover", "Рендж Ровер"),
    "Lexus": ("Лексус",),
    "Mazda": ("Мазда",),
    "Mercedes-Benz": ("Мерседес", "Мерседес-Бенц", "Mercedes", "Мерс"),
    "Mitsubishi": ("Мицубиси", "Митсубиши", "Мицубиши"),
    "Nissan": ("Ниссан",),
    "Omoda": ("Омода",),
    "Opel": ("Опель",),
    "Peugeot": ("Пежо",),
    "Porsche": ("Порше",),
    "Renault": ("Рено",),
    "Skoda": ("Шкода", "Škoda"),
    "SsangYong": ("Санг Йонг", "Ссанг Йонг", "Ссангйонг"),
    "Subaru": ("Субару",),
    "Suzuki": ("Сузуки",),
    "Toyota": ("Тойота",),
    "UAZ": ("УАЗ",),
    "Volkswagen": ("Фольксваген", "VW", "Фольц"),
    "Volvo": ("Вольво",),
}

_RU = "йцукенгшщзхъфывапролджэячсмитьбю"
_EN = "qwertyuiop[]asdfghjkl;'zxcvbnm,."
RU_TO_EN_LAYOUT = str.maketrans(_RU + _RU.upper(), _EN + _EN.upper())
EN_TO_RU_LAYOUT = str.maketrans(_EN + _EN.upper(), _RU + _RU.upper())


@dataclass(frozen=True, slots=True)
class MakeMatch:
    make: str
    exact: bool


def _fold(text: str) -> str:
    return "".join(text.lower().replace("ё", "е").replace("ë", "e").replace("š", "s").split()).replace("-", "")


@lru_cache(maxsize=1)
def _names() -> tuple[tuple[str, str], ...]:
    """(folded name or alias, canonical make), every spelling once."""
    out: dict[str, str] = {}
    for make, aliases in MAKES.items():
        for name in (make, *aliases):
            out.setdefault(_fold(name), make)
    return tuple(sorted(out.items()))


def _variants(query: str) -> list[str]:
    """The query as typed and typed in the other keyboard layout (both directions)."""
    typed = query.strip()
    variants = [_fold(typed)]
    for table in (RU_TO_EN_LAYOUT, EN_TO_RU_LAYOUT):
        swapped = _fold(typed.translate(table))
        if swapped not in variants:
            variants.append(swapped)
    return [v for v in variants if v]


def find_makes(query: str) -> list[MakeMatch]:
    """Makes a query may mean: exact spellings first, then unique-by-prefix candidates, no duplicates."""
    names = _names()
    exact: list[str] = []
    prefixed: list[str] = []
    for variant in _variants(query):
        for folded, make in names:
            if folded == variant and make not in exact:
                exact.append(make)
            elif folded.startswith(variant) and make not in prefixed:
                prefixed.append(make)
    return [MakeMatch(m, True) for m in exact] + [MakeMatch(m, False) for m in prefixed if m not in exact]


#: A prefix names a make in a search box only from this many letters on: «тойо» is Toyota, but «сит» is as likely
#: the start of a surname (Ситников) as of Citroen.
MIN_SEARCH_PREFIX = 4


def makes_meant(query: str) -> tuple[str, ...]:
    """The makes a search box query names: every make it spells exactly (as typed or in the other layout),
    else the one make a prefix of at least :data:`MIN_SEARCH_PREFIX` letters leaves; () when it names none."""
    matches = find_makes(query)
    exact = tuple(m.make for m in matches if m.exact)
    if exact:
        return exact
    if len(matches) == 1 and len(_fold(query)) >= MIN_SEARCH_PREFIX:
        return (matches[0].make,)
    return ()


def canonical_make(text: str) -> str:
    """The directory's name for a make as typed: an exact or single-prefix match, else the text tidied."""
    matches = find_makes(text)
    if matches and (matches[0].exact or len(matches) == 1):
        return matches[0].make
    return " ".join(text.split())
