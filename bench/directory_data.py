# ruff: noqa: SIM905 -- word lists are easier to read and edit as text
"""The synthetic client directory of ``bench.directory``: Russian people, their phones and their cars.

Seeded, so the same ``(seed, contacts, vehicles)`` always gives the same rows. Built to give lookups a
realistic selectivity rather than to be pretty:

* **names** are ``Surname First-name Patronymic``; surnames come from :data:`SURNAMES` (the common ones,
  most frequent first) and a long tail made of :data:`ROOTS` × :data:`SUFFIXES`, drawn with Zipf-like
  weights ``1 / (rank + 8) ** 0.95`` (the top surname is about 1 % of people, as Ivanov is in Russia),
  in the female form for half the people. Some carry «ё» (Королёв, Пётр), which the name key folds.
  A few percent are companies (``ООО «Автоцентр Север-12»``), kind ``corporate``.
* **phones**: 1 (70 %) or 2 mobile numbers each, ``+7 9xx``, distinct except for about 1 % of contacts who
  share a relative's number; written in the mixed forms a CRM holds (``8 916 123-45-67``,
  ``+7 (916) 123-45-67``, ``89161234567`` ...).
* **vehicles**: 0 to 3 per contact (22 % / 46 % / 22 % / 10 % at the default 1.2 per contact, then nudged
  so the total is exact); a make of :data:`cti.makes.MAKES` (Lada the most common), a model, a year,
  a standard plate ``А 123 ВС 777`` in Cyrillic (distinct full plates; the same base may recur in
  another region, as it does on real roads) and, for half of them, a VIN.
"""

from __future__ import annotations

import random
import string
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from cti.directory import Contact, ContactKind, Vehicle
from cti.makes import MAKES

#: Common Russian surnames (male form), roughly most frequent first.
SURNAMES = """
Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков Алексеев
Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин Захаров Зайцев
Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин Фролов Александров Дмитриев Королёв
Гусев Киселёв Ильин Максимов Поляков Сорокин Виноградов Ковалёв Белов Медведев Антонов Тарасов Жуков
Баранов Филиппов Комаров Давыдов Беляев Герасимов Богданов Осипов Сидоров Матвеев Титов Марков Миронов
Крылов Куликов Карпов Власов Мельников Денисов Гаврилов Тихонов Казаков Афанасьев Данилов Савельев Тимофеев
Фомин Чернов Абрамов Мартынов Ефимов Федотов Щербаков Назаров Калинин Исаев Чернышёв Быков Маслов Родионов
Коновалов Лазарев Воронин Климов Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв
Овчинников Трофимов Леонов Соболев Ермаков Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин
Ефремов Архипов Громов Кириллов Малышев Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов Анисимов
Ерёмин Тихомиров Галкин Лукьянов Михеев Скворцов Юдин Белоусов Нестеров Симонов Прокофьев Харитонов
Князев Цветков Левин Митрофанов Воронов Аксёнов Софронов Мальцев Логинов Горшков Савин Краснов Майоров
Демидов Елисеев Рыбаков Сафонов Плотников Дёмин Хохлов Жданов Носков Блинов Лаптев Ширяев Гордеев
Брагин Шубин Дьячков Лыткин Суворов Мамонтов Горелов Рогов Зуев Зимин Шестаков Дорофеев Агафонов
Муравьёв Рожков Бобров Третьяков Лапин Комиссаров Зиновьев Суханов Фокин Селезнёв Игнатов Кабанов
Троицкий Вишневский Покровский Успенский Богословский Соколовский Ковальчук Шевченко Бондаренко Кравченко
Коваленко Бойко Ткаченко Мельниченко Савченко Руденко Марченко Литвиненко Петренко Лысенко Кравец Толстой
Гоголь Пушкарёв Ломоносов Менделеев Чайковский Рахманинов Островский Полевой Лановой Луговой Мухин
""".split()

#: Stems of the long tail: surname = root + suffix (Белкин, Белкинский ...), rarer the further down.
ROOTS = """
Белк Бурл Ветр Вихр Гал Горох Гребн Долг Дуб Жар Звон Зорк Колос Кочет Крут Лось Мох Нагорн Овсян Пастух
Полоз Рябин Сверч Сквор Сом Стриж Сыч Тетер Угр Хмел Чиж Шмел Щегл Ястреб Бархат Верес Голован Дятл Ерш
Клюк Комар Крот Лунь Мороз Налим Окун Перепел Пескар Ракит Репн Ряб Сорок Тополь Филин Хорь Черемх
Чубар Шалфей Ясен Бел Вороб Гусл Дым Жук Зуб Кедр Клён Кремн Лис Мак Мышк Ольх Пест Рыж Сив Тих Ус Хват
Черн Шапош Юрл Ярош Авер Баж Вяз Гром Дудк Ерм Жил Засып Игол Камыш Лыс Масл Нос Орех Пыж Рус Смол Ткач
""".split()
SUFFIXES = ("ов", "ин", "ев", "ский", "енко", "ук", "ых", "ович")
MALE_NAMES = """
Александр Сергей Дмитрий Андрей Алексей Максим Евгений Иван Михаил Владимир Артём Николай Никита Павел
Денис Роман Игорь Антон Олег Илья Кирилл Юрий Виктор Константин Вадим Василий Пётр Григорий Степан
Фёдор Тимур Руслан Георгий Леонид Борис Анатолий Геннадий Валерий Станислав Ярослав Глеб Матвей Марк
Тимофей Егор Даниил Вячеслав Аркадий Семён Лев
""".split()
FEMALE_NAMES = """
Елена Ольга Наталья Татьяна Ирина Светлана Анна Мария Екатерина Юлия Анастасия Марина Людмила Галина
Надежда Валентина Дарья Алёна Ксения Виктория Полина Алина Кристина Вера Любовь Лариса Оксана Евгения
Софья Александра Елизавета Диана Яна Маргарита Нина Тамара Зоя Раиса Жанна Вероника Ульяна Варвара
""".split()
#: Fathers' names → (son's patronymic, daughter's).
PATRONYMICS = [(n + "ович", n + "овна") for n in """
Александр Дмитрий Максим Иван Михаил Владимир Артём Павел Денис Роман Игорь Антон Олег Кирилл Виктор
Константин Вадим Пётр Григорий Степан Фёдор Борис Анатолий Леонид Станислав Глеб Марк Егор Семён
""".split()] + [
    ("Сергеевич", "Сергеевна"), ("Андреевич", "Андреевна"), ("Алексеевич", "Алексеевна"),
    ("Николаевич", "Николаевна"), ("Евгеньевич", "Евгеньевна"), ("Юрьевич", "Юрьевна"),
    ("Васильевич", "Васильевна"), ("Валерьевич", "Валерьевна"), ("Геннадьевич", "Геннадьевна"),
    ("Аркадьевич", "Аркадьевна"), ("Ильич", "Ильинична"), ("Никитич", "Никитична"), ("Кузьмич", "Кузьминична"),
]
COMPANY_WORDS = "Автоцентр Автомир Техсервис Логистик Стройтранс Агропром Север Восток Меридиан Вектор Гранит".split()
COMPANY_FORMS = ("ООО «{}»", "АО «{}»", "ИП {}", "ООО «{}-Авто»")

#: Cyrillic letters of Russian plates.
PLATE_LETTERS = "АВЕКМНОРСТУХ"
#: Region codes, the big cities listed several times so that they are the common ones.
REGIONS = ("77 97 99 177 197 199 777 797 799 977 50 90 150 190 750 790 78 98 178 198 16 116 716 02 102 702 "
           "23 93 123 193 61 161 761 66 96 196 52 152 54 154 74 174 63 163 59 159 24 124 34 134 36 136 "
           "38 138 42 142 55 155 56 156 64 164 72 172 73 173 76 01 03 04 05 06 07 08 09 10 11 12 13 14 15 "
           "17 18 19 21 22 25 26 27 28 29 30 31 32 33 35 37 39 40 41 43 44 45 46 47 48 49 51 53 57 58 60 "
           "62 65 67 68 69 70 71 75 79 83 86 87 89 92 95").split()
#: Makes and their weight (share of the park, roughly), with a few models each.
MODELS: dict[str, tuple[int, tuple[str, ...]]] = {
    "Lada": (26, ("Granta", "Vesta", "Niva", "Largus", "Priora", "Kalina", "2107")),
    "Kia": (9, ("Rio", "Ceed", "Sportage", "Optima", "Soul")),
    "Hyundai": (8, ("Solaris", "Creta", "Tucson", "Elantra", "Santa Fe")),
    "Toyota": (8, ("Camry", "Corolla", "RAV4", "Land Cruiser", "Prado")),
    "Renault": (5, ("Logan", "Duster", "Sandero", "Kaptur", "Arkana")),
    "Volkswagen": (5, ("Polo", "Tiguan", "Jetta", "Passat", "Golf")),
    "Skoda": (4, ("Octavia", "Rapid", "Kodiaq", "Superb")),
    "Nissan": (4, ("Qashqai", "X-Trail", "Almera", "Juke")),
    "Chery": (4, ("Tiggo 4", "Tiggo 7 Pro", "Tiggo 8")),
    "Haval": (4, ("Jolion", "F7", "H6", "Dargo")),
    "Geely": (3, ("Coolray", "Monjaro", "Atlas", "Emgrand")),
    "Mercedes-Benz": (3, ("E-Class", "C-Class", "GLE", "Sprinter")),
    "BMW": (3, ("X5", "3 Series", "5 Series", "X3")),
    "Mitsubishi": (2, ("Outlander", "Lancer", "Pajero", "ASX")),
    "Ford": (2, ("Focus", "Mondeo", "Transit", "Kuga")),
    "Chevrolet": (2, ("Niva", "Cruze", "Lacetti", "Aveo")),
    "Mazda": (2, ("CX-5", "6", "3")),
    "GAZ": (2, ("Gazelle Next", "Sobol", "Volga")),
    "UAZ": (1, ("Patriot", "Hunter", "Buhanka")),
}
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
#: How many contacts (per 100) have 0, 1, 2, 3 vehicles at 1.2 vehicles per contact.
VEHICLE_SHARES = (22, 46, 22, 10)


def feminine(surname: str) -> str:
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    if surname.endswith(("ский", "цкий")):
        return surname[:-2] + "ая"
    if surname.endswith("ой"):
        return surname[:-2] + "ая"
    return surname  # -енко, -ук, -ых, -ич, -ец, Гоголь: the same for women


def all_surnames() -> list[str]:
    """The common surnames, then the long tail (root × suffix), in rank order."""
    seen = set(SURNAMES)
    tail = [root + suffix for suffix in SUFFIXES for root in ROOTS if root + suffix not in seen]
    return SURNAMES + tail


def written_phone(digits10: str, form: int) -> str:
    """A Russian mobile number (10 national digits) in one of the forms people write."""
    d = digits10
    return (
        f"8 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"8{d}",
        f"+7{d}",
        f"+7 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
        f"8 ({d[:3]}) {d[3:]}",
        f"7{d}",
    )[form]


N_PHONE_FORMS = 7


class Generator:
    """Contacts for ``--contacts`` and ``--vehicles``, drawn from one seeded RNG."""

    def __init__(self, seed: int, contacts: int, vehicles: int) -> None:
        self.rng = random.Random(seed)
        self.contacts = contacts
        self.vehicles = vehicles
        self.surnames = all_surnames()
        weights = [1 / (rank + 8) ** 0.95 for rank in range(len(self.surnames))]
        self.cum_surnames = list(accumulate(weights))
        self.cum_makes = list(accumulate(w for w, _ in MODELS.values()))
        self.makes = list(MODELS)
        assert all(make in MAKES for make in self.makes)

    def _vehicle_counts(self) -> list[int]:
        rng, n = self.rng, self.contacts
        counts = rng.choices(range(len(VEHICLE_SHARES)), weights=VEHICLE_SHARES, k=n)
        excess = sum(counts) - self.vehicles
        while excess:  # nudge random contacts until the total is exact
            i = rng.randrange(n)
            if excess > 0 and counts[i] > 0:
                counts[i] -= 1
                excess -= 1
            elif excess < 0 and counts[i] < 3:
                counts[i] += 1
                excess += 1
        return counts

    def _plates(self) -> Iterator[str]:
        """Distinct full plates, in random order, as written (``А 123 ВС 777`` or ``А123ВС77``)."""
        rng, seen = self.rng, set()
        while True:
            letters = rng.choices(PLATE_LETTERS, k=3)
            digits = f"{rng.randint(1, 999):03d}"
            region = rng.choice(REGIONS)
            key = (letters[0], digits, letters[1], letters[2], region)
            if key in seen:
                continue
            seen.add(key)
            if rng.random() < 0.5:
                yield f"{letters[0]} {digits} {letters[1]}{letters[2]} {region}"
            else:
                yield f"{letters[0]}{digits}{letters[1]}{letters[2]}{region}"

    def _phones(self) -> Iterator[str]:
        """Distinct 10-digit mobile numbers 9xx..., in random order."""
        for x in self.rng.sample(range(1_000_000_000), self.contacts * 2):
            yield f"9{x:09d}"

    def __iter__(self) -> Iterator[Contact]:
        rng = self.rng
        counts = self._vehicle_counts()
        plates = self._plates()
        phones = self._phones()
        recent: list[str] = []  # numbers handed out lately: a relative may share one
        surnames, cum = self.surnames, self.cum_surnames
        total = cum[-1]
        for i in range(self.contacts):
            if rng.random() < 0.02:
                word = rng.choice(COMPANY_WORDS) + ("" if rng.random() < 0.3 else f" {rng.randint(1, 999)}")
                name = rng.choice(COMPANY_FORMS).format(word)
                kind: ContactKind = "corporate"
            else:
                surname = surnames[bisect_left(cum, rng.random() * total)]
                father = rng.choice(PATRONYMICS)
                if rng.random() < 0.5:
                    name = f"{surname} {rng.choice(MALE_NAMES)} {father[0]}"
                else:
                    name = f"{feminine(surname)} {rng.choice(FEMALE_NAMES)} {father[1]}"
                kind = "private"
            numbers: list[str] = []
            for _ in range(1 if rng.random() < 0.7 else 2):
                if recent and rng.random() < 0.005:
                    numbers.append(rng.choice(recent))  # a shared family number
                else:
                    numbers.append(next(phones))
            recent = (recent + numbers)[-50:]
            phone_texts = tuple(written_phone(n, rng.randrange(N_PHONE_FORMS)) for n in dict.fromkeys(numbers))
            cars = []
            for _ in range(counts[i]):
                make = self.makes[bisect_left(self.cum_makes, rng.random() * self.cum_makes[-1])]
                vin = "".join(rng.choices(VIN_CHARS, k=17)) if rng.random() < 0.5 else None
                cars.append(Vehicle(make=make, model=rng.choice(MODELS[make][1]), year=rng.randint(1998, 2025),
                                    plate=next(plates), vin=vin))
            email = (f"{_latin(name.split()[0])}{i}@{rng.choice(('mail.ru', 'yandex.ru', 'gmail.com'))}"
                     if rng.random() < 0.4 else None)
            yield Contact(name=name, kind=kind, phones=phone_texts, email=email,
                          external_id=f"ЦБ-{i + 1:08d}", vehicles=tuple(cars))


_TRANSLIT = str.maketrans({c: t for c, t in zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", [
    "a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u",
    "f", "h", "ts", "ch", "sh", "sch", "", "y", "", "e", "yu", "ya"], strict=True)})


def _latin(word: str) -> str:
    out = word.lower().translate(_TRANSLIT)
    return "".join(c for c in out if c in string.ascii_lowercase) or "client"
