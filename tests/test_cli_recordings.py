"""``cti recordings purge|deleted`` on a real SQLite journal and a real folder (companion/cli/recordings.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from companion.retention import DAY
from store.sqlite import SqliteStore
from tests.cli_runner import cti
from tests.daemon.conftest import write_config
from tests.store.builders import make_call


def seed(tmp_path: Path, keep_days: str) -> tuple[Path, Path]:
    folder = tmp_path / "monitor"
    folder.mkdir()
    for name in ("old.wav", "new.wav"):
        (folder / name).write_bytes(b"RIFF....WAVE")
    config = write_config(tmp_path, 5038, sections={"recording": f'dir = "{folder}"\n{keep_days}'})

    async def calls() -> None:
        store = await SqliteStore.open(tmp_path / "journal.sqlite")
        try:
            for linkedid, age, name in (("1.1", 40, "old.wav"), ("1.2", 5, "new.wav"), ("1.3", 41, "gone.wav")):
                store.stage_call(make_call(linkedid, answered=True, answered_by="101",
                                           started_at=time.time() - age * DAY, recording=name, recordings=(name,)),
                                 None, ())
            await store.flush()
        finally:
            await store.close()

    asyncio.run(calls())
    return config, folder


def test_purge_dry_run_then_purge_then_the_log(tmp_path: Path) -> None:
    config, folder = seed(tmp_path, "keep_days = 30")
    dry = cti("recordings", "purge", "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would delete: {folder.resolve() / 'old.wav'} (call 1.1, PBX main)" in dry.stdout
    assert "Would delete 1 file(s); 1 already gone" in dry.stdout
    assert (folder / "old.wav").exists()
    assert "No recording deleted" in cti("recordings", "deleted", "--config", str(config)).stdout

    done = cti("recordings", "purge", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "Deleted 1 file(s); 1 already gone" in done.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["new.wav"]
    log = cti("recordings", "deleted", "--config", str(config)).stdout.splitlines()
    assert len(log) == 2
    assert any("main  1.1  old.wav  older than 30 days" in line for line in log)
    assert any("main  1.3  gone.wav  older than 30 days: already gone" in line for line in log)


def test_purge_without_keep_days_says_so(tmp_path: Path) -> None:
    config, folder = seed(tmp_path, "")
    out = cti("recordings", "purge", "--config", str(config), check=False)
    assert out.returncode == 2 and "keep_days is not set" in out.stderr
    assert (folder / "old.wav").exists()
