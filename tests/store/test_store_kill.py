"""A daemon killed with SIGKILL while its writer is busy loses nothing it had flushed.

A child Python process opens a store, runs the writer task, and stages calls (each with a live event)
round after round, flushing after each round and printing how many calls it has flushed so far. Some
calls are left in progress: their live events only. The test lets a few rounds through, kills the child
with SIGKILL while it keeps writing, and reopens the file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiosqlite

from store.sqlite import SqliteStore
from tests.conftest import UNIT
from tests.store.builders import T0, make_call, missed_for

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, sys
from store.sqlite import SqliteStore
from tests.store.builders import T0, make_call, missed_for

ROUND = 150

async def main() -> None:
    async with SqliteStore.open(sys.argv[1], flush_interval=0.005, batch_size=50) as store:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(store.run_writer())
            for k in range(3):  # calls still going on when the daemon dies
                store.stage_event(f"live-{k}", [("Event", "Newchannel"), ("CallerIDName", "Анна Смирнова")],
                                  T0 + k)
            for i in range(ROUND):  # the first calls start
                store.stage_event(f"call-{i:06d}", [("Event", "Newchannel"), ("Linkedid", str(i))], T0 + i)
            saved = 0
            while True:  # each round: the next 150 calls start, the previous 150 end
                for i in range(saved + ROUND, saved + 2 * ROUND):
                    store.stage_event(f"call-{i:06d}", [("Event", "Newchannel"), ("Linkedid", str(i))], T0 + i)
                for i in range(saved, saved + ROUND):
                    record = make_call(f"call-{i:06d}", started_at=T0 + i, caller_name="Иван Кузнецов")
                    store.stage_call(record, missed_for(record), ())
                saved += ROUND
                await store.flush()
                print(saved, flush=True)

asyncio.run(main())
"""


async def test_sigkill_mid_write_keeps_every_flushed_call_and_a_sound_file(tmp_path: Path) -> None:
    path = tmp_path / "cti.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    flushed = 0
    try:
        async with asyncio.timeout(60 * UNIT):
            for _ in range(8):
                line = await child.stdout.readline()
                assert line, (await child.stderr.read()).decode()
                flushed = int(line)
        await asyncio.sleep(0.05 * UNIT)  # rounds go on being written
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    # The child printed a count only after flush() returned: every call up to the last one is durable.
    flushed = max([flushed, *(int(line) for line in (await child.stdout.read()).split())])
    assert flushed >= 8 * 150

    async with aiosqlite.connect(path) as db, db.execute("PRAGMA integrity_check") as cursor:
        assert [tuple(row) for row in await cursor.fetchall()] == [("ok",)]

    async with SqliteStore.open(path) as store:
        saved = await store.list_calls()
        assert len(saved) >= flushed
        expected = [make_call(f"call-{i:06d}", started_at=T0 + i, caller_name="Иван Кузнецов")
                    for i in range(len(saved))]
        assert saved == expected  # every flushed call, whole, and no half-written batch after them
        assert len(await store.list_missed(status="open")) == len(saved)

        live = await store.live_events()
        assert live[:3] == [(f"live-{k}", [("Event", "Newchannel"), ("CallerIDName", "Анна Смирнова")], T0 + k)
                            for k in range(3)]
        # Saved calls left no events behind; the calls of the last round that had started are there.
        n = len(saved)
        assert live[3:] == [(f"call-{i:06d}", [("Event", "Newchannel"), ("Linkedid", str(i))], T0 + i)
                            for i in range(n, n + 150)]

        # The restarted daemon finishes a call that was in progress: its events go with it.
        record = make_call("live-1", started_at=T0 + 1)
        store.stage_call(record, missed_for(record), ())
        await store.flush()
        assert [lid for lid, _, _ in await store.live_events()][:2] == ["live-0", "live-2"]
        assert await store.get_call("live-1") == record
