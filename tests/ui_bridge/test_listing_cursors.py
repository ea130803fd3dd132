"""``/api/calls`` and ``/api/missed`` page by cursor over real HTTP: each answer's ``next`` is the place of its
last row, ``?after=`` goes on from there. A walk yields every row once, in order, while calls keep being saved;
``offset`` still works for old clients; a cursor that was altered or belongs elsewhere is a clear 400.

The rows are saved through the running daemon's own store (real SQLite) and read through the panel (real HTTP).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from cti.records import CallRecord
from store.repository import Store
from tests.panel_env import PanelEnv, panel_env
from tests.store.builders import T0, make_call, missed_for

TRACE = "13-blind-transfer-redirect"  # never started: the store holds only the rows a test saves


@asynccontextmanager
async def logged_in(env: PanelEnv, name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=env.url) as http:
        response = await http.post("/api/login", json={"name": name, "password": env.users[name][0]})
        assert response.status_code == 200, response.text
        yield http


async def save(store: Store, calls: list[CallRecord], *, missed: bool = False) -> None:
    for record in calls:
        store.stage_call(record, missed_for(record) if missed else None, ())
    await store.flush()


def history() -> list[CallRecord]:
    """45 calls, three at each instant (the order's tie-break is the linkedid); every third one rang agent 101."""
    return [make_call(f"1700000000.{i:03d}", started_at=T0 + 60 * (i // 3), caller=f"7916000{i:04d}",
                      agents_rung_not_answered=("101",) if i % 3 == 0 else ("102",)) for i in range(45)]


def newest_first(calls: list[CallRecord]) -> list[str]:
    return [c.linkedid for c in sorted(calls, key=lambda c: (c.started_at, c.linkedid), reverse=True)]


async def walk(http: httpx.AsyncClient, path: str, key: str, params: dict[str, Any],
               between_pages: Callable[[int], Any] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Follow ``next`` from the first page to the last; ``between_pages(n)`` runs after page ``n`` is read."""
    rows: list[dict[str, Any]] = []
    after: str | None = None
    pages = 0
    while True:
        response = await http.get(path, params={**params, **({"after": after} if after else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body[key]
        pages += 1
        after = body["next"]
        if after is None:
            return rows, pages
        assert len(body[key]) == params["limit"], "a page with a next is a full page"
        if between_pages is not None:
            await between_pages(pages)


async def test_walking_the_journal_by_cursor_gives_every_call_once_newest_first_while_calls_keep_coming() -> None:
    async with panel_env([TRACE]) as env, logged_in(env, "admin") as admin:
        calls = history()
        await save(env.store, calls)
        late = make_call("1700000000.late", started_at=T0 + 60 * 3 + 1)  # began long ago, saved only now

        async def calls_saved_meanwhile(page: int) -> None:
            await save(env.store, [make_call(f"1800000000.{page}", started_at=T0 + 10_000 + page)])  # newest
            if page == 2:
                await save(env.store, [late])

        rows, pages = await walk(admin, "/api/calls", "calls", {"limit": 7}, calls_saved_meanwhile)
        got = [r["linkedid"] for r in rows]
        assert len(got) == len(set(got)), "no call twice"
        assert got == newest_first([*calls, late]), "every call once, newest first; the late one in its place"
        assert pages == 7  # 46 rows by 7: the last page is short and says there is no next

        # Old clients: offset still pages, and its answer carries a cursor to go on with.
        top = [r["linkedid"] for r in (await admin.get("/api/calls", params={"limit": 13})).json()["calls"]]
        by_offset = (await admin.get("/api/calls", params={"limit": 5, "offset": 5})).json()
        assert [r["linkedid"] for r in by_offset["calls"]] == top[5:10]
        following = (await admin.get("/api/calls", params={"limit": 3, "after": by_offset["next"]})).json()["calls"]
        assert [r["linkedid"] for r in following] == top[10:13]


async def test_an_agent_walks_only_their_own_calls_and_filters_hold_across_pages() -> None:
    async with panel_env([TRACE]) as env, logged_in(env, "anna") as anna, logged_in(env, "admin") as admin:
        calls = history()
        await save(env.store, calls)
        rows, _ = await walk(anna, "/api/calls", "calls", {"limit": 4, "agent": "102"})  # 102 is ignored for her
        assert [r["linkedid"] for r in rows] == newest_first([c for c in calls if "101" in c.agents_rung_not_answered])
        since = datetime.fromtimestamp(T0 + 2400, UTC).isoformat()
        rows, _ = await walk(admin, "/api/calls", "calls", {"limit": 6, "since": since, "agent": "102"})
        assert [r["linkedid"] for r in rows] == newest_first(
            [c for c in calls if "102" in c.agents_rung_not_answered and c.started_at >= T0 + 2400])


async def test_walking_the_register_by_cursor_gives_every_entry_once_oldest_first_new_ones_at_the_end() -> None:
    async with panel_env([TRACE]) as env, logged_in(env, "qa") as qa:
        calls = history()[:20]
        await save(env.store, calls, missed=True)

        async def a_call_missed_meanwhile(page: int) -> None:
            record = make_call(f"1800000000.{page}", started_at=T0 + 10_000 + page)
            await save(env.store, [record], missed=True)

        rows, _ = await walk(qa, "/api/missed", "missed", {"limit": 6}, a_call_missed_meanwhile)
        got = [r["linkedid"] for r in rows]
        stored = [e.linkedid for e in await env.store.list_missed()]
        assert got == stored, "every entry once, in the register's order"
        assert got[:20] == [c.linkedid for c in calls] and got[20:] == ["1800000000.1", "1800000000.2",
                                                                        "1800000000.3"]
        open_rows, _ = await walk(qa, "/api/missed", "missed", {"limit": 4, "status": "open"})
        assert [r["linkedid"] for r in open_rows] == stored


async def test_a_cursor_that_was_altered_made_up_or_belongs_elsewhere_is_a_400_that_says_so() -> None:
    async with panel_env([TRACE]) as env, logged_in(env, "admin") as admin:
        await save(env.store, history()[:10], missed=True)
        calls_next = (await admin.get("/api/calls", params={"limit": 3})).json()["next"]
        missed_next = (await admin.get("/api/missed", params={"limit": 3})).json()["next"]
        assert calls_next and missed_next

        raw = bytearray(base64.urlsafe_b64decode(calls_next + "=" * (-len(calls_next) % 4)))
        raw[raw.index(b"1700000000.") + 11] ^= 0x01  # another linkedid: a place the server never gave
        tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
        for token in (tampered, calls_next[:-4], "not-a-cursor", "%%%", "é" * 10, "A" * 5000):
            response = await admin.get("/api/calls", params={"after": token})
            assert response.status_code == 400, token
            error = response.json()["error"]
            assert error["code"] == "bad_request" and "after: not a cursor this server gave" in error["message"]
            assert "`next`" in error["message"], "it says what to send instead"

        wrong = await admin.get("/api/missed", params={"after": calls_next})
        assert wrong.status_code == 400
        assert wrong.json()["error"]["message"] == "after: this cursor is a place in /api/calls, not in /api/missed"
        assert (await admin.get("/api/calls", params={"after": missed_next})).status_code == 400

        both = await admin.get("/api/calls", params={"after": calls_next, "offset": 3})
        assert both.status_code == 400 and "give one of them" in both.json()["error"]["message"]
        # The genuine ones still work.
        assert (await admin.get("/api/calls", params={"after": calls_next})).status_code == 200
        assert (await admin.get("/api/missed", params={"after": missed_next})).status_code == 200
