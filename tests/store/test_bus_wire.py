"""How a bus message travels in NOTIFY payloads (``store/postgres/bus_wire.py``), without a database: every payload
under PostgreSQL's limit, never a character split, and the listener's joining of parts from interleaved sessions."""

from __future__ import annotations

import random

import pytest

from store.postgres.bus_wire import NOTIFY_BYTES, Assembler, BadMessage, encode


def test_a_short_message_is_one_notification_and_a_long_one_parts_under_the_limit() -> None:
    assert encode("pop") == ["=pop"]
    rng = random.Random(11)
    alphabet = "aZ9 {}\"ёЖщ€😀"  # 1, 2, 3 and 4 bytes of UTF-8
    for size in (NOTIFY_BYTES - 2, NOTIFY_BYTES, 20_000, 100_000):
        text = "".join(rng.choice(alphabet) for _ in range(size))
        notes = encode(text)
        assert all(len(note.encode("utf-8")) < 8000 for note in notes)  # PostgreSQL refuses 8000 and more
        assembler = Assembler()
        joined = [assembler.feed(42, note) for note in notes]
        assert joined[-1] == text and joined[:-1] == [None] * (len(notes) - 1)


def test_parts_of_two_sessions_are_joined_apart() -> None:
    first, second = encode("a" * 20_000), encode("б" * 9_000)
    assembler = Assembler()
    out = [assembler.feed(1, first[0]), assembler.feed(2, second[0])]
    out += [assembler.feed(2, note) for note in second[1:]]
    out += [assembler.feed(1, note) for note in first[1:]]
    assert [m for m in out if m is not None] == ["б" * 9_000, "a" * 20_000]


def test_what_is_not_ours_or_out_of_order_is_refused_and_the_next_message_still_arrives() -> None:
    assembler = Assembler()
    for junk in ("hello", ">x/2:a", ">1:a", ">3/2:a"):
        with pytest.raises(BadMessage):
            assembler.feed(7, junk)
    parts = encode("c" * 20_000)
    assembler.feed(7, parts[0])
    with pytest.raises(BadMessage):  # a part lost in between (a reconnection): that message is dropped
        assembler.feed(7, parts[2])
    assert assembler.feed(7, "=next") == "next"
    assembler.feed(7, parts[0])
    assembler.reset()  # the connection dropped: its partial message will never be completed
    with pytest.raises(BadMessage):
        assembler.feed(7, parts[1])
