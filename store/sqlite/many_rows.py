"""Many rows in one statement: ``INSERT … VALUES (…), (…), …`` and ``… WHERE key IN (…)``.

Why not ``executemany``: the ``sqlite3`` module releases the GIL around every row's step and must take it back to
bind the next row. While the event loop is busy (the daemon under load) each take-back waits for the loop's thread
to let go of the GIL (up to the interpreter's switch interval), so a batch of a few hundred calls took over a
second to commit and the store fell behind, pausing the AMI reading. One statement per table and batch binds
everything in one go and steps once: the GIL is taken back once per statement. Each batch has a shape of its own,
so the writer's connection keeps no prepared statements (``cached_statements=0`` in ``store/sqlite/lanes.py``).
Rows are written in the order given, as ``executemany`` writes them (an upsert of the same key twice in one
statement updates the first, as two statements would).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

import aiosqlite

#: SQLite's limit on the parameters of one statement (``SQLITE_MAX_VARIABLE_NUMBER``, 32,766 since 3.32).
MAX_PARAMETERS = 32_766


def _chunks(rows: Sequence[Sequence[Any]], width: int) -> Iterator[Sequence[Sequence[Any]]]:
    per = max(1, MAX_PARAMETERS // width)
    for start in range(0, len(rows), per):
        yield rows[start:start + per]


async def insert_rows(db: aiosqlite.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """``head`` (``INSERT INTO t (a, b)``) ``VALUES`` one group of placeholders per row, then ``tail``
    (an ``ON CONFLICT`` clause). Every row has the same number of values."""
    if not rows:
        return
    width = len(rows[0])
    group = "(" + ", ".join("?" * width) + ")"
    for chunk in _chunks(rows, width):
        await db.execute(f"{head} VALUES {', '.join([group] * len(chunk))} {tail}",
                         list(chain.from_iterable(chunk)))


async def where_in(db: aiosqlite.Connection, sql: str, keys: Sequence[Any], before: Sequence[Any] = ()) -> None:
    """``sql`` with its one ``{keys}`` replaced by the placeholders of ``keys`` (``DELETE … WHERE k IN ({keys})``);
    ``before``: the values of the placeholders written before ``{keys}`` (``… WHERE pbx = ? AND k IN ({keys})``)."""
    for chunk in _chunks([(k,) for k in keys], 1 + len(before)):
        await db.execute(sql.format(keys=", ".join("?" * len(chunk))), [*before, *(row[0] for row in chunk)])
