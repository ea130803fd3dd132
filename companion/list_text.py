"""A list field of journal rows as the store keeps it (JSON text) -> as each format of ``cti calls`` writes it.

Why: a month's export is 150,000 rows of four lists each (the agents rung and answering, the recordings, the
linkedids). Decoding each list into a tuple only for the printer to encode it again cost a fifth of an export's
time; ``Store.iter_call_pages(stored=True)`` hands over the text, ``json.dumps(list(values), ensure_ascii=False)``
to the character, and a page's texts of one field are rewritten here in one piece (:func:`column`).

The usual text is ``[]`` or ``["a", "b"]`` whose strings hold no backslash (no escape: every ``"`` opens or closes
a string), no bracket (so ``["`` and ``"]`` are only ever a list's ends) and no control character: checked for a
whole page at once by one regular expression, then rewritten by a few ``str.replace`` over the page's text, the
JSON array at the nesting of a listing's element or the items joined with ``;`` (a CSV or a table cell). A page
with any other text (an escape, a bracket, other spacing, items that are not strings) raises :class:`NotPlain`:
the printer decodes its lists (:func:`items`) and takes its careful path, which gives the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any


class NotPlain(ValueError):
    """A list's text is not the usual form (see the module's docstring): decode it instead."""


#: One list in the usual form (see the module's docstring).
_LIST = r'(?:\[\]|\["[^"\\\[\]\x00-\x1f]*"(?:, "[^"\\\[\]\x00-\x1f]*")*\])'
#: A page's texts of one field, joined with NUL (which no text in the usual form holds).
_COLUMN = re.compile(_LIST + r"(?:\x00" + _LIST + r")*")

#: The rewriting into the JSON array at the nesting of a listing's element (``json.dumps(..., indent=1)`` inside
#: an array): ``[\n   "a",\n   "b"\n  ]``; ``[]`` stays as it is.
JSON = (('", "', '",\n   "'), ('["', '[\n   "'), ('"]', '"\n  ]'))
#: The rewriting into the items joined with ``;`` (``a;b``, ``""`` for none), as a CSV or a table cell shows a list.
JOINED = (('", "', ";"), ('["', ""), ('"]', ""), ("[]", ""))


def column(texts: Iterable[Any], form: tuple[tuple[str, str], ...]) -> list[str]:
    """Each of ``texts`` (one field of a page's rows, in order) rewritten in ``form`` (:data:`JSON`,
    :data:`JOINED`); :class:`NotPlain` when any of them is not the usual form, or not text."""
    try:
        text = "\x00".join(texts)
    except TypeError:
        raise NotPlain("not text") from None
    if _COLUMN.fullmatch(text) is None:
        raise NotPlain("not the usual form")
    for old, new in form:
        text = text.replace(old, new)
    return text.split("\x00")


def kept(texts: Iterable[Any], form: tuple[tuple[str, str], ...], known: dict[str, str]) -> dict[str, str]:
    """``known`` (text -> the text rewritten in ``form``) holding every one of ``texts``: for the lists of agents,
    a few hundred distinct ones on a site, each rewritten once (:func:`column`) and then looked up. Started over
    when it would pass :data:`KEPT` (then it holds this page's texts only)."""
    distinct = set(texts)
    missing = [t for t in distinct if t not in known]
    if missing:
        if len(known) + len(missing) > KEPT:
            known.clear()
            missing = list(distinct)
        known.update(zip(missing, column(missing, form), strict=True))
    return known


#: How many texts :func:`kept` keeps.
KEPT = 4096


def items(value: Any) -> tuple[Any, ...]:
    """The list's items, as a ``CallRow`` holds them (the careful path). Decoded as the store's own reading did:
    the usual form split as text, any other parsed, a control character inside a string taken as it is
    (``strict=False``); a sequence is taken as it is."""
    if value.__class__ is not str:
        return tuple(value)
    if _ONE.fullmatch(value) is not None:
        return tuple(value[2:-2].split('", "')) if value != "[]" else ()
    return tuple(_decode(value))


_ONE = re.compile(_LIST)
_decode = json.JSONDecoder(strict=False).decode
