"""The stems search and keyword flags compare: every form of a word meets on one stem, Russian and English."""

from __future__ import annotations

import threading

import pytest
import snowballstemmer.english_stemmer
import snowballstemmer.russian_stemmer

from cti.stemming import stem_word, stems, words


@pytest.mark.parametrize(("forms", "language"), [
    (["машина", "машину", "машины", "машиной", "машинами"], "ru"),
    (["мастер", "мастера", "мастеру", "мастером"], "ru"),
    (["жалоба", "жалобу", "жалобы", "Жалобой"], "ru"),
    (["car", "cars", "Cars"], "en"),
    (["refund", "refunds", "refunded", "refunding"], "en"),
    (["booking", "bookings", "booked"], "en"),
])
def test_every_form_of_a_word_gives_one_stem(forms: list[str], language: str) -> None:
    assert len({stem_word(f) for f in forms}) == 1, {f: stem_word(f) for f in forms}


def test_different_words_keep_different_stems() -> None:
    assert stem_word("машина") != stem_word("мастер")
    assert stem_word("car") != stem_word("card")


def test_yo_is_read_as_ye() -> None:
    assert stem_word("ещё") == stem_word("еще")
    assert stems("Всё ЗАПИСАНО") == stems("все записано")


def test_a_decomposed_letter_is_one_letter() -> None:
    decomposed = "мой"  # «мой» with «й» written as «и» and a combining breve
    assert words(decomposed) == ["мой"] and stems(decomposed) == stems("мой")
    assert stems("ёлка") == stems("ёлка") == stems("елка")


def test_text_is_split_into_words_of_letters_and_digits() -> None:
    assert words("Здравствуйте! Запись на ТО-2, в 10:30; e-mail: x_y") == [
        "здравствуйте", "запись", "на", "то", "2", "в", "10", "30", "e", "mail", "x", "y"]
    assert stems("") == []
    assert stems("  ,.;!? \"' * - NEAR") == ["near"]


def test_digits_and_other_scripts_are_kept_as_they_are() -> None:
    assert stems("2024 안녕하세요 α") == ["2024", "안녕하세요", "α"]


def test_stems_are_letters_and_digits_only_whatever_the_input() -> None:
    hostile = 'машину" OR NEAR(a b) * -cars ^col:x \'; DROP TABLE calls; -- \x00 \u202e'
    result = stems(hostile)
    assert result and all(s.isalnum() for s in result)
    assert stem_word("машину") in result and "car" in result


def test_stem_word_takes_the_first_word() -> None:
    assert stem_word("  Машину  купили") == stem_word("машина")
    assert stem_word("...") == ""


def test_c_and_pure_python_snowball_agree() -> None:
    """PyStemmer when installed, the pure-Python package otherwise: a store indexed by one is searched by the other."""
    sample = ["машину", "машинами", "записался", "записи", "отказался", "жалоба", "сервис", "мастера", "приеду",
              "завтра", "cars", "refunds", "booking", "booked", "services", "running", "happily", "complaint"]
    ru = snowballstemmer.russian_stemmer.RussianStemmer()
    en = snowballstemmer.english_stemmer.EnglishStemmer()
    for word in sample:
        pure = ru.stemWord(word) if word[0] >= "а" else en.stemWord(word)
        assert stem_word(word) == pure, word


def test_threads_stem_at_once_and_agree() -> None:
    text = "машину машина записи cars refunds " * 50
    expected = stems(text)
    results: list[list[str]] = []

    def run() -> None:
        results.append(stems(text + " " + threading.current_thread().name))

    threads = [threading.Thread(target=run, name=f"t{i}") for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert all(r[: len(expected)] == expected for r in results)
