"""The transcription queue and the transcripts on SQLite: ``store/transcriptions.py``'s dialect here.

The next job is taken inside the one writer's ``BEGIN IMMEDIATE`` transaction (two processes on one file take the
write lock in turn), so no lock clause is needed. The search asks the FTS5 index ``transcript_search`` (0015): each
stem quoted as an FTS5 string (a stem is letters and digits only, so the quotes are all the query's syntax), all of
them required, within the speaker's column when the query names one (``{agent_stems} : (...)``). A word's stems are
compared as whole space-separated tokens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiosqlite

from cti.records import CallRecord
from cti.transcripts import Speaker
from store.sqlite import rows
from store.transcriptions import LANE_COLUMN, Row
from store.transcriptions import TranscriptOps as SharedTranscriptOps


def fts_query(stems: Sequence[str], speaker: Speaker | None) -> str:
    """The FTS5 query of ``stems``: every one required, each a quoted string, on ``speaker``'s column if given."""
    phrases = " ".join('"' + s.replace('"', '""') + '"' for s in stems)
    return f"{{{LANE_COLUMN[speaker]}}} : ({phrases})" if speaker is not None else phrases


class TranscriptOps(SharedTranscriptOps):
    """The ``store.repository.Transcriptions`` concern on SQLite."""

    _HAS_RECORDING = "(c.recording IS NOT NULL OR c.recordings <> '[]')"

    def _terms_condition(self, stems: Sequence[str], speaker: Speaker | None, params: dict[str, Any]) -> str:
        params["match"] = fts_query(stems, speaker)
        return "t.id IN (SELECT rowid FROM transcript_search WHERE transcript_search MATCH :match)"

    def _word_has_stem(self, stems: Sequence[str], params: dict[str, Any]) -> str:
        params["qstems"] = json.dumps(list(stems), ensure_ascii=False)
        return ("EXISTS (SELECT 1 FROM json_each(:qstems) q "
                "WHERE instr(' ' || w.stems || ' ', ' ' || q.value || ' ') > 0)")

    async def _insert_many(self, conn: aiosqlite.Connection, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        await conn.executemany(sql, rows)

    def _call_record(self, row: Row) -> CallRecord:
        return rows.record_from_row(row)
