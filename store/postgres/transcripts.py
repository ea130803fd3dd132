"""The transcription queue and the transcripts on PostgreSQL: ``store/transcriptions.py``'s dialect here.

Several nodes share the database: the next job is picked ``FOR UPDATE SKIP LOCKED``, so two takers at once get two
different jobs (or one gets none) and never the same one. The search asks the GIN index over
``transcript_terms(...)`` (0010): each stem tagged with its speaker's letter; every tagged stem on the lane
(``@>``), or each stem on some lane (``&&`` with its three tagged forms): whole stems, exactly as the SQLite store's
FTS5 index matches them. A word's stems are compared as an array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cti.records import CallRecord
from cti.transcripts import SPEAKERS, Speaker
from store.postgres import rows
from store.postgres.base import Conn
from store.postgres.params import positional
from store.transcriptions import Row
from store.transcriptions import TranscriptOps as SharedTranscriptOps

_TERMS = "transcript_terms(t.agent_stems, t.customer_stems, t.unknown_stems)"
#: The letter that tags a speaker's stems in ``transcript_terms`` (0010).
_LETTER: dict[Speaker, str] = {"agent": "a", "customer": "c", "unknown": "u"}


class TranscriptOps(SharedTranscriptOps):
    """The ``store.repository.Transcriptions`` concern on PostgreSQL."""

    _LOCK_NEXT = " FOR UPDATE SKIP LOCKED"
    _HAS_RECORDING = "(c.recording IS NOT NULL OR cardinality(c.recordings) > 0)"

    def _terms_condition(self, stems: Sequence[str], speaker: Speaker | None, params: dict[str, Any]) -> str:
        if speaker is not None:
            params["terms"] = [f"{_LETTER[speaker]}_{s}" for s in stems]
            return f"{_TERMS} @> :terms::text[]"
        where = []
        for i, stem in enumerate(stems):
            params[f"any{i}"] = [f"{_LETTER[s]}_{stem}" for s in SPEAKERS]
            where.append(f"{_TERMS} && :any{i}::text[]")
        return "(" + " AND ".join(where) + ")"

    def _word_has_stem(self, stems: Sequence[str], params: dict[str, Any]) -> str:
        params["qstems"] = list(stems)
        return "string_to_array(w.stems, ' ') && :qstems::text[]"

    async def _insert_many(self, conn: Conn, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        text, _ = positional(sql, rows[0])
        await conn.executemany(text, [positional(sql, r)[1] for r in rows])

    def _call_record(self, row: Row) -> CallRecord:
        return rows.record_from_row(row)
