"""The retention on both stores: the audio of calls older than keep_days goes, newer stays, the log lists each file,
a missing file is logged once as already gone, and nothing outside the recordings folder is ever touched
(companion/retention.py)."""

from __future__ import annotations

import time
from pathlib import Path

from asterisk.recording_files import RecordingSettings
from companion.retention import DAY, purge
from cti.recording import recording_base
from store.repository import Store
from tests.store.builders import make_call

NOW = time.time()


def settings(folder: Path, keep_days: int | None = 30) -> RecordingSettings:
    return RecordingSettings(dir=folder, keep_days=keep_days)


async def journal(store: Store, *calls: tuple[str, float, tuple[str, ...]]) -> None:
    for linkedid, age_days, names in calls:
        store.stage_call(make_call(linkedid, answered=True, answered_by="101", started_at=NOW - age_days * DAY,
                                   recording=names[0] if names else None, recordings=names), None, ())
    await store.flush()


def audio(folder: Path, *names: str) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"RIFF....WAVE")


async def test_old_audio_goes_new_stays_and_the_log_lists_it(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "monitor"
    daemon_mix = f"{recording_base('main', '100.3')}-mix.wav"
    daemon_halves = (f"{recording_base('main', '100.3')}-in.wav", f"{recording_base('main', '100.3')}-out.wav")
    audio(folder, "old.wav", "old-in.wav", "old-out.wav", "new.wav", daemon_mix, *daemon_halves)
    await journal(store, ("100.1", 40, ("old.wav", "old-in.wav", "old-out.wav")), ("100.2", 10, ("new.wav",)),
                  ("100.3", 31, (daemon_mix,)), ("100.4", 45, ("gone.wav",)), ("100.5", 50, ()))
    done = await purge(store, settings(folder), NOW)
    assert sorted((p.linkedid, p.name, p.outcome) for p in done) == sorted([
        ("100.1", "old.wav", "deleted"), ("100.1", "old-in.wav", "deleted"), ("100.1", "old-out.wav", "deleted"),
        ("100.3", daemon_mix, "deleted"), ("100.3", daemon_halves[0], "deleted"),
        ("100.3", daemon_halves[1], "deleted"), ("100.4", "gone.wav", "already gone")])
    assert sorted(p.name for p in folder.iterdir()) == ["new.wav"]
    log = await store.deleted_audio()
    assert sorted((d.linkedid, d.name) for d in log) == sorted((p.linkedid, p.name) for p in done)
    assert {d.reason for d in log if d.name == "gone.wav"} == {"older than 30 days: already gone"}
    assert {d.reason for d in log if d.name != "gone.wav"} == {"older than 30 days"}
    # The journal keeps the calls (and their names): only the audio went.
    assert [c.recordings for c in await store.list_calls() if c.linkedid == "100.1"] == [
        ("old.wav", "old-in.wav", "old-out.wav")]
    # A second run (the next day's) finds nothing more to do and logs nothing twice.
    assert await purge(store, settings(folder), NOW + 60) == []
    assert len(await store.deleted_audio()) == len(log)


async def test_a_dry_run_deletes_and_logs_nothing(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "monitor"
    audio(folder, "old.wav")
    await journal(store, ("200.1", 40, ("old.wav",)))
    done = await purge(store, settings(folder), NOW, dry_run=True)
    assert [(p.name, p.outcome) for p in done] == [("old.wav", "would delete")]
    assert (folder / "old.wav").exists() and await store.deleted_audio() == []


async def test_without_keep_days_everything_is_kept(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "monitor"
    audio(folder, "old.wav")
    await journal(store, ("300.1", 4000, ("old.wav",)))
    assert await purge(store, settings(folder, keep_days=None), NOW) == []
    assert (folder / "old.wav").exists()


async def test_nothing_outside_the_folder_is_touched(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "monitor"
    audio(folder)
    outside = tmp_path / "journal.wav"
    outside.write_bytes(b"precious")
    (folder / "link.wav").symlink_to(outside)
    await journal(store, ("400.1", 40, ("../journal.wav",)), ("400.2", 40, ("link.wav",)),
                  ("400.3", 40, (str(outside),)))
    done = await purge(store, settings(folder), NOW)
    assert sorted((p.linkedid, p.outcome) for p in done) == [("400.1", "refused"), ("400.2", "refused"),
                                                              ("400.3", "refused")]
    assert outside.read_bytes() == b"precious" and (folder / "link.wav").is_symlink()
    assert await store.deleted_audio() == []
