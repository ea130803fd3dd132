"""Retention: the audio of calls older than ``[recording] keep_days`` is deleted; their rows and transcripts stay.

Once at start and then once a day, one node at a time (the store's lease ``job:retention``: on a PostgreSQL store
with several nodes, whichever holds it does the work), every file the journal lists for a call that started before
the cut-off (``cti.recording.files_of``: the daemon's split halves included) is deleted, through the one function
that turns a name into a path (``asterisk.recording_files.recording_path``): a name that leads out of the
recordings folder is refused and never touched. Each file is logged in the store's deletion log
(``store.forget_audio``, read by ``cti recordings deleted``) and in the daemon's log; a file already gone (deleted
by hand, or never written) is logged once as such.

After the first run the scan starts a little before the previous run's cut-off (the newest entry of the log says
when that was), so a daily run reads a day of the journal, not all of it. ``cti recordings purge`` runs the same
code by hand (``--dry-run``: what would go, nothing deleted or logged).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asterisk.recording_files import RecordingSettings, recording_path
from cti.recording import files_of
from store.repository import Store

log = logging.getLogger(__name__)

DAY = 86_400.0
#: How often the daemon runs the retention.
EVERY_SECONDS = DAY
#: How far before the previous run's cut-off a run looks again (a call journaled late, a clock moved).
MARGIN_SECONDS = 2 * DAY
LEASE = "job:retention"

Outcome = Literal["deleted", "already gone", "refused", "failed", "would delete"]


@dataclass(frozen=True, slots=True)
class Purged:
    """One file the retention dealt with, and what became of it."""

    pbx: str
    linkedid: str
    name: str
    outcome: Outcome
    #: Where it was (None when the name was refused), and why it failed or was refused.
    path: Path | None = None
    detail: str = ""


def cutoff(settings: RecordingSettings, now: float) -> float | None:
    """Calls that started before this go; None: ``keep_days`` is not set (keep every recording)."""
    return None if settings.keep_days is None else now - settings.keep_days * DAY


async def purge(store: Store, settings: RecordingSettings, now: float, *, pbxs: Collection[str] | None = None,
                dry_run: bool = False) -> list[Purged]:
    """Delete (or, ``dry_run``, list) the audio of the calls older than ``keep_days``; see the module's docstring."""
    keep = settings.keep_days
    if keep is None:
        return []
    before = now - keep * DAY
    since: float | None = None
    logged: set[tuple[str, str, str]] = set()
    newest = await store.deleted_audio(limit=1)
    if newest:
        last_run = newest[0].at
        since = last_run - keep * DAY - MARGIN_SECONDS
        logged = {(d.pbx, d.linkedid, d.name)
                  for d in await store.deleted_audio(since=last_run - MARGIN_SECONDS, limit=10_000_000)}
    out: list[Purged] = []
    async for record in store.iter_calls(since=since, until=before, pbxs=pbxs):
        names = [n for n in files_of(record) if (record.pbx, record.linkedid, n) not in logged]
        if not names:
            continue
        # Off the event loop: an unlink on a mounted share can take as long as the network does.
        done = await asyncio.to_thread(_purge_files, settings, record.pbx, record.linkedid, names, dry_run)
        out.extend(done)
        if dry_run:
            continue
        for outcome in ("deleted", "already gone"):
            gone = [p.name for p in done if p.outcome == outcome]
            if gone:
                reason = f"older than {keep} days" + ("" if outcome == "deleted" else ": already gone")
                await store.forget_audio(record.linkedid, pbx=record.pbx, names=gone, at=now, reason=reason)
        for p in done:
            if p.outcome == "deleted":
                log.info("retention: deleted %s of call %s (PBX %s)", p.path, p.linkedid, p.pbx)
            elif p.outcome == "already gone":
                log.info("retention: %s of call %s (PBX %s) was already gone", p.path, p.linkedid, p.pbx)
            else:
                log.warning("retention: %s of call %s (PBX %s) %s: %s", p.name, p.linkedid, p.pbx, p.outcome,
                            p.detail)
    return out


def _purge_files(settings: RecordingSettings, pbx: str, linkedid: str, names: list[str], dry_run: bool
                 ) -> list[Purged]:
    return [_purge_file(settings, pbx, linkedid, name, dry_run) for name in names]


def _purge_file(settings: RecordingSettings, pbx: str, linkedid: str, name: str, dry_run: bool) -> Purged:
    try:
        path = recording_path(settings, pbx, name)
    except ValueError as exc:
        return Purged(pbx, linkedid, name, "refused", None, str(exc))
    if not os.path.lexists(path):
        return Purged(pbx, linkedid, name, "already gone", path)
    if dry_run:
        return Purged(pbx, linkedid, name, "would delete", path)
    try:
        path.unlink()
    except FileNotFoundError:
        return Purged(pbx, linkedid, name, "already gone", path)
    except OSError as exc:
        return Purged(pbx, linkedid, name, "failed", path, exc.strerror or str(exc))
    return Purged(pbx, linkedid, name, "deleted", path)


async def run_retention(settings: RecordingSettings, store: Callable[[], Store | None],
                        pbxs: Collection[str] | None = None, *, every: float = EVERY_SECONDS,
                        clock: Callable[[], float] = time.time) -> None:
    """The daemon's task: :func:`purge` at start and every ``every`` seconds, under the lease ``job:retention``."""
    while True:
        current = store()
        if current is not None:
            try:
                await _run_once(current, settings, clock(), pbxs)
            except Exception:  # a store that cannot be read now: tried again at the next run, never fatal
                log.exception("retention: the run failed; trying again in %.0f s", every)
        await asyncio.sleep(every)


async def _run_once(store: Store, settings: RecordingSettings, now: float, pbxs: Collection[str] | None) -> None:
    lease = await store.try_lease(LEASE)
    if lease is None:
        log.debug("retention: another node runs it")
        return
    try:
        done = await purge(store, settings, now, pbxs=pbxs)
    finally:
        await lease.release()
    deleted = sum(1 for p in done if p.outcome == "deleted")
    if done:
        log.info("retention: %d file(s) deleted, %d already gone, %d refused or failed (calls before %s days)",
                 deleted, sum(1 for p in done if p.outcome == "already gone"),
                 sum(1 for p in done if p.outcome in ("refused", "failed")), settings.keep_days)
