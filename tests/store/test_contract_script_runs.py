"""The contact script's runs kept by the store, against the interface (every store runs it: tests/store/conftest).

What an agent relies on: a run started for a call is found again (a reload, a second tab, a restart) with its saved
state, one run per agent and call however often it is launched, a save from a stale tab refused instead of
overwriting, finished runs no longer listed as open, and the text of a script's version kept for a run that outlives
an edit of the script.
"""

from __future__ import annotations

import pytest

from store.repository import ScriptRunChanged, ScriptRunNotFound, Store
from tests.store.builders import T0
from tests.store.conftest import OpenStore

STATE = {"format": 1, "script": "car-service", "stack": [{"step": "reason", "entered_at": T0, "inputs": []}],
         "context": {"caller": "79161234567", "note": "Иванов «Пётр»"}}


async def start(store: Store, agent: str = "101", linkedid: str | None = "1795480456.101", pbx: str = "main"):
    return await store.start_script_run(pbx=pbx, agent=agent, linkedid=linkedid, script="car-service",
                                        version="3f2a9c01b7de", state=STATE, at=T0)


async def test_a_run_reads_back_as_started_and_a_second_launch_for_the_call_finds_it(store: Store) -> None:
    run, new = await start(store)
    assert new and run.id > 0
    assert (run.pbx, run.agent, run.linkedid, run.script, run.version, run.status, run.revision) == (
        "main", "101", "1795480456.101", "car-service", "3f2a9c01b7de", "open", 1)
    assert run.state == STATE and (run.started_at, run.updated_at) == (T0, T0)  # Cyrillic and quotes as given
    again, new = await start(store)
    assert not new and again == run
    other_agent, new = await start(store, agent="104")  # the master the call was passed to: a run of their own
    assert new and other_agent.id != run.id
    assert await store.get_script_run(run.id) == run
    with pytest.raises(ScriptRunNotFound):
        await store.get_script_run(run.id + 1000)


async def test_runs_started_by_hand_are_each_new(store: Store) -> None:
    first, new_first = await start(store, linkedid=None)
    second, new_second = await start(store, linkedid=None)
    assert new_first and new_second and first.id != second.id and first.linkedid is None


async def test_a_save_moves_the_revision_on_and_a_stale_save_is_refused_with_the_run_as_it_is(store: Store) -> None:
    run, _ = await start(store)
    moved = {**STATE, "stack": [*STATE["stack"], {"step": "private_client", "entered_at": T0 + 5, "inputs": []}]}
    saved = await store.save_script_run(run.id, state=moved, status="open", revision=run.revision, at=T0 + 5)
    assert (saved.revision, saved.state, saved.updated_at, saved.started_at) == (2, moved, T0 + 5, T0)
    with pytest.raises(ScriptRunChanged) as stale:  # a second tab still at revision 1
        await store.save_script_run(run.id, state=STATE, status="discarded", revision=run.revision, at=T0 + 6)
    assert stale.value.run == saved
    assert await store.get_script_run(run.id) == saved
    with pytest.raises(ScriptRunNotFound):
        await store.save_script_run(run.id + 1000, state=STATE, status="open", revision=1, at=T0)


async def test_open_runs_of_an_agent_or_a_call_and_finished_ones_left_out(store: Store) -> None:
    anna, _ = await start(store)
    by_hand, _ = await start(store, linkedid=None)
    oleg, _ = await start(store, agent="102", linkedid="1795480500.7")
    elsewhere, _ = await start(store, pbx="spb")
    assert [r.id for r in await store.open_script_runs(pbx="main", agent="101")] == [anna.id, by_hand.id]
    assert [r.id for r in await store.open_script_runs(agent="101")] == [anna.id, by_hand.id, elsewhere.id]
    assert [r.id for r in await store.open_script_runs(pbx="main", linkedid="1795480456.101")] == [anna.id]
    await store.save_script_run(anna.id, state=STATE, status="registered", revision=1, at=T0 + 60)
    assert [r.id for r in await store.open_script_runs(pbx="main", agent="101")] == [by_hand.id]
    assert [r.id for r in await store.open_script_runs()] == [by_hand.id, oleg.id, elsewhere.id]
    assert (await store.get_script_run(anna.id)).status == "registered"  # kept, not deleted


async def test_a_script_versions_text_is_kept_once_and_survives_a_restart(open_store: OpenStore) -> None:
    store = await open_store()
    text = 'name = "car-service"\ntitle = "Входящий звонок"\n'
    await store.keep_script_version("car-service", "3f2a9c01b7de", text, at=T0)
    await store.keep_script_version("car-service", "3f2a9c01b7de", "something else", at=T0 + 1)  # a version is its text
    run, _ = await start(store)
    await store.close()
    store = await open_store()
    assert await store.script_source("car-service", "3f2a9c01b7de") == text
    assert await store.script_source("car-service", "000000000000") is None
    assert [r.id for r in await store.open_script_runs(agent="101")] == [run.id]


async def test_the_kept_versions_are_listed_newest_first(store: Store) -> None:
    # What the reports read a reason's title from when a row names no version (the newest version has it first).
    assert await store.kept_script_versions() == []
    await store.keep_script_version("car-service", "aaaaaaaaaaaa", "old", at=T0)
    await store.keep_script_version("car-service", "bbbbbbbbbbbb", "new", at=T0 + 60)
    await store.keep_script_version("car-service-en", "cccccccccccc", "en", at=T0 + 30)
    assert await store.kept_script_versions() == [("car-service", "bbbbbbbbbbbb"), ("car-service-en", "cccccccccccc"),
                                                  ("car-service", "aaaaaaaaaaaa")]
