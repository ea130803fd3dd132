"""Named parameters (``:since``) for asyncpg, which numbers them (``$1``).

Why: the journal's and the register's queries are built from optional parts (a filter here, a keyset bound
there), each naming its parameters as the SQLite store's do; numbering them by hand as the parts come and go
would be error-prone. A ``::type`` cast is left alone; a name used twice is one parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

_NAME = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAME.sub(number, sql), tuple(names)


def positional(sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``sql`` with ``:name`` turned into ``$n``, and the values in that order (a missing name is a KeyError)."""
    text, names = _numbered(sql)
    return text, [params[name] for name in names]
