"""A store written before PBXs had ids (SQLite schema 6, PostgreSQL schema 1), opened by this program: every row it
held is the default PBX's ("main"), read back through the interface as before, and the store goes on working, with
its register's numbers never reused, and taking calls of other PBXs beside its own.

The old rows are written by SQL in the old schema's own shapes (as the program of that version left them), so
the test does not depend on today's writer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from cti.records import DEFAULT_PBX
from store.migrate import load_migrations, migrate
from store.postgres import PostgresStore
from store.postgres.migrate import migrate as migrate_postgres
from store.postgres.migrate import postgres_migrations
from store.repository import Store
from store.sqlite import SqliteStore
from tests.postgres import cluster
from tests.store.builders import T0, make_call, missed_for

#: The rows an old store holds, as SQL over the old schema; ``{list_101}`` etc. are each database's forms.
OLD_ROWS = [
    "INSERT INTO calls (linkedid, direction, caller, caller_key, called, called_key, answered, talk_seconds, "
    "agents_rung_not_answered, started_at, ended_at, outcome, missed_reason, linkedids) VALUES "
    f"('old-1', 'inbound', '89161234567', '79161234567', '74951234567', '74951234567', {{no}}, 0, {{list_101}}, "
    f"{T0}, {T0 + 40}, 'missed', 'no_answer', {{list_old_1}})",
    "INSERT INTO calls (linkedid, direction, caller, caller_key, called, called_key, answered, answered_by, "
    "talk_seconds, agents_answered, started_at, answered_at, ended_at, outcome, linkedids) VALUES "
    f"('old-2', 'inbound', '89031112233', '79031112233', '74951234567', '74951234567', {{yes}}, '102', 30, "
    f"{{list_102}}, {T0 + 10}, {T0 + 15}, {T0 + 50}, 'answered', {{list_old_2}})",
    "INSERT INTO call_agents (agent, started_at, linkedid, rung_not_answered, answered) VALUES "
    f"('101', {T0}, 'old-1', {{yes}}, {{no}}), ('102', {T0 + 10}, 'old-2', {{no}}, {{yes}})",
    "INSERT INTO agent_misses (linkedid, agent, rang_at, ring_seconds, reason, caller) VALUES "
    f"('old-1', '101', {T0 + 1}, 15, 'no_answer', '89161234567')",
    "INSERT INTO missed (linkedid, caller, caller_key, called, reason, missed_at, ring_seconds, agents_rung) VALUES "
    f"('old-1', '89161234567', '79161234567', '74951234567', 'no_answer', {T0}, 0, {{list_101}})",
    "INSERT INTO missed (linkedid, caller, caller_key, reason, missed_at, ring_seconds) VALUES "
    f"('old-gone', '89260000000', '79260000000', 'no_answer', {T0 + 20}, 0)",
    "INSERT INTO missed_history (entry_id, at, action, linkedid) SELECT id, missed_at, 'opened', linkedid FROM missed",
    # The newest entry deleted (a retention job): its number stays used.
    "DELETE FROM missed_history WHERE linkedid = 'old-gone'",
    "DELETE FROM missed WHERE linkedid = 'old-gone'",
    f"""INSERT INTO live_events (linkedid, headers, received_at) VALUES ('live-1', '[["Event", "Newchannel"]]',
        {T0 + 100})""",
    "INSERT INTO contacts (id, name, name_key, created_at, updated_at) VALUES (1, 'Иванов', 'иванов', 0, 0)",
    f"INSERT INTO call_contacts (linkedid, contact_id, attached_by, attached_at) VALUES ('old-2', 1, 'anna', {T0})",
    f"INSERT INTO users (name, role, extension, created_at) VALUES ('anna', 'agent', '101', {T0})",
    "INSERT INTO sessions (token_hash, user_name, created_at, last_used_at, expires_at) VALUES "
    f"('s1', 'anna', {T0}, {T0}, {T0 + 10**9})",
]
SQLITE_FORMS = {"no": "0", "yes": "1", "list_101": """'["101"]'""", "list_102": """'["102"]'""",
                "list_old_1": """'["old-1"]'""", "list_old_2": """'["old-2"]'"""}
POSTGRES_FORMS = {"no": "false", "yes": "true", "list_101": "'{101}'", "list_102": "'{102}'",
                  "list_old_1": "'{old-1}'", "list_old_2": "'{old-2}'"}

async def old_sqlite(tmp_path: Path) -> Callable[[], Awaitable[Store]]:
    path = tmp_path / "old.sqlite"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db, load_migrations()[:6]) == 6
        for sql in OLD_ROWS:
            await db.execute(sql.format(**SQLITE_FORMS))

    async def opened() -> Store:
        return await SqliteStore.open(path)

    return opened


async def old_postgres(tmp_path: Path) -> Callable[[], Awaitable[Store]]:
    url = await cluster().fresh_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        assert await migrate_postgres(conn, postgres_migrations()[:1]) == 1
        for sql in OLD_ROWS:
            await conn.execute(sql.format(**POSTGRES_FORMS))
    finally:
        await conn.close()

    async def opened() -> Store:
        return await PostgresStore.open(url)

    return opened


@pytest.mark.parametrize("old", [old_sqlite, old_postgres], ids=["sqlite", "postgresql"])
async def test_a_store_from_before_pbxs_keeps_every_row_as_the_default_pbxs(
        old: Callable[[Path], Awaitable[Callable[[], Awaitable[Store]]]], tmp_path: Path) -> None:
    store = await (await old(tmp_path))()
    try:
        calls = await store.list_calls()
        assert [(c.pbx, c.linkedid) for c in calls] == [("main", "old-1"), ("main", "old-2")]
        assert await store.list_calls(pbxs=[DEFAULT_PBX]) == calls and await store.list_calls(pbxs=["spb"]) == []
        assert await store.get_call("old-2") == calls[1] and await store.get_call("old-2", pbx="spb") is None
        assert [c.linkedid for c in await store.list_calls(agent="101", pbxs=["main"])] == ["old-1"]
        assert [c.linkedid for c in await store.list_calls(agent="102")] == ["old-2"]
        assert [(m.pbx, m.linkedid, m.agent) for m in await store.list_agent_misses()] == [("main", "old-1", "101")]
        [entry] = await store.list_missed(status="open")
        assert (entry.pbx, entry.linkedid, entry.agents_rung) == ("main", "old-1", ("101",))
        assert entry.id is not None and [h.action for h in await store.missed_history(entry.id)] == ["opened"]
        assert await store.live_events(DEFAULT_PBX) == [("live-1", [("Event", "Newchannel")], T0 + 100)]
        assert await store.live_events("spb") == []
        attached = await store.contact_of_call("old-2")
        assert attached is not None and attached.name == "Иванов"
        user = await store.get_user("anna")
        assert user is not None and user.pbxs == ()
        assert await store.session_grant("s1", T0 + 1) is not None  # nobody was logged out by the upgrade

        # It goes on: the register's numbers after the largest ever given, call-backs on the old entries, and the
        # same linkedid from another PBX beside the old call.
        new = make_call("new-1", caller="89270000000", started_at=T0 + 200)
        store.stage_call(new, missed_for(new), ())
        store.stage_call(make_call("back", direction="outbound", called="8 916 123-45-67", answered=True,
                                   answered_by="101", started_at=T0 + 300), None, ())
        spb = make_call("old-1", started_at=T0, pbx="spb")
        store.stage_call(spb, None, ())
        await store.flush()
        [fresh] = await store.list_missed(number="89270000000")
        assert fresh.id == entry.id + 2  # not entry.id + 1: that was the deleted entry's
        assert (await store.get_missed(entry.id)).closed_linkedid == "back"
        assert await store.get_call("old-1", pbx="spb") == spb and await store.get_call("old-1") == calls[0]
    finally:
        await store.close()


async def test_the_sqlite_migration_keeps_the_counter_of_an_emptied_register(tmp_path: Path) -> None:
    """Every entry deleted: the rebuilt register still goes on after the largest number it ever gave."""
    path = tmp_path / "emptied.sqlite"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await migrate(db, load_migrations()[:6])
        for i in range(3):
            await db.execute("INSERT INTO missed (linkedid, reason, missed_at, ring_seconds) "
                             "VALUES (?, 'no_answer', ?, 0)", (f"gone-{i}", T0 + i))
        await db.execute("DELETE FROM missed")
    async with SqliteStore.open(path) as store:
        record = make_call("after", started_at=T0 + 100)
        store.stage_call(record, missed_for(record), ())
        await store.flush()
        assert [e.id for e in await store.list_missed()] == [4]
