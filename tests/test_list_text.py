"""A stored list (JSON text) rewritten for ``cti calls`` is exactly what encoding the decoded list gives, or is
refused so that the printer decodes it: never a third text (``companion.list_text``)."""

from __future__ import annotations

import json
import random

import pytest

from companion.list_text import JOINED, JSON, NotPlain, column, items, kept
from companion.output import json_value

#: Items that look like the text's own syntax, or that the encoder escapes, among plain ones.
ITEMS = ["101", "", "Иванов №7", "r.wav", '", "', "a, b", "[a]", "x]", "[", '"', "\\", "tab\there", "line\nbreak",
         "\x7f", "a\u202eb", "; ;", "20261101-031030-148-1793491830.5287048.wav", "漢字", "'"]


def _lists(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.sample(ITEMS, rng.choice((0, 0, 1, 1, 1, 2, 3))) for _ in range(n)]


def _as_json(values: list[str]) -> str:
    """The list as the printer's careful path writes it (``output.json_value`` of a field)."""
    return json_value(values)


def test_a_page_of_usual_lists_is_rewritten_as_the_encoder_writes_it() -> None:
    plain = [v for v in ITEMS if not any(c in v for c in '"\\[]\t\n')]
    rng = random.Random(3)
    lists = [rng.sample(plain, rng.choice((0, 1, 2, 3))) for _ in range(500)]
    texts = [json.dumps(values, ensure_ascii=False) for values in lists]
    assert column(texts, JSON) == [_as_json(values) for values in lists]
    assert column(texts, JOINED) == [";".join(values) for values in lists]
    assert [items(t) for t in texts] == [tuple(values) for values in lists]


def test_any_other_page_is_refused_and_decoded_instead() -> None:
    for seed in range(200):
        lists = _lists(20, seed)
        texts = [json.dumps(values, ensure_ascii=False) for values in lists]
        for form, expected in ((JSON, [_as_json(v) for v in lists]), (JOINED, [";".join(v) for v in lists])):
            try:
                got = column(texts, form)
            except NotPlain:
                assert any(c in t[1:-1] for t in texts for c in "\\[]"), texts  # only for an escape or a bracket
            else:
                assert got == expected
        assert [items(t) for t in texts] == [tuple(v) for v in lists]


@pytest.mark.parametrize("text", ['["a","b"]', '[ "a"]', '["a" ]', '["a",  "b"]', "[1]", '["a", 1]', "[null]",
                                  '["a\x01"]', '["a"]x', "", "[", '["a", "b"', '[""', '["]'])
def test_a_text_not_in_the_usual_form_is_refused(text: str) -> None:
    with pytest.raises(NotPlain):
        column(["[]", text, '["a"]'], JSON)
    with pytest.raises(NotPlain):
        column([text], JOINED)


def test_what_is_not_text_is_refused_and_a_sequence_is_taken_as_it_is() -> None:
    for value in (None, 5, ["a"]):
        with pytest.raises(NotPlain):
            column(["[]", value], JSON)
    assert items(["a", "b"]) == ("a", "b") and items(("a",)) == ("a",)
    assert items('["a\x01", "b"]') == ("a\x01", "b")  # taken as the store's reading took it


def test_kept_lists_are_rewritten_once_and_bounded() -> None:
    known: dict[str, str] = {}
    texts = [json.dumps([f"1{i % 50:02d}"]) for i in range(300)] + ["[]"]
    assert kept(texts, JOINED, known) is known
    assert {known[t] for t in texts} == {f"1{i:02d}" for i in range(50)} | {""}
    assert len(known) == 51
    many = [json.dumps([str(i)]) for i in range(5000)]
    kept(many, JOINED, known)
    assert all(known[t] == t[2:-2] for t in many)  # a page's texts are all there, whatever was dropped before
    with pytest.raises(NotPlain):
        kept(['["a\\"b"]'], JOINED, {})
