"""QA's comments and scores on both stores (``store.repository.QaReviews``): one module, as ``reminders.py``.

The statements are the same on SQLite and PostgreSQL (named parameters, ``ON CONFLICT ... DO UPDATE ...
RETURNING``); each backend's store mixes :class:`QaOps` in and runs them through its ``_manual`` transactions,
``_rows_in`` and ``_read``.

A score keeps when its call started (``call_started_at``: the journal's, else the transcription job's, else the
score's own time), looked up once when it is saved, so the per-agent report over a period reads one indexed column
and needs the journal for nothing. A reviewer saving again replaces their score (one per call, checklist and
reviewer). The report averages each call's reviewers first, then the agent's calls: a call two reviewers scored
counts once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cti.qa import AgentScore, QaComment, QaScore
from cti.records import DEFAULT_PBX
from store.listing import pbx_condition, pbx_set

T = TypeVar("T")
Row = Any

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_SCORE_COLUMNS = ("pbx", "linkedid", "checklist", "answers", "points", "max_points", "agent", "author", "at",
                  "call_started_at")
_SAVE_SCORE = (
    f"INSERT INTO qa_scores ({', '.join(_SCORE_COLUMNS)}) VALUES ({', '.join(':' + c for c in _SCORE_COLUMNS)}) "
    "ON CONFLICT (pbx, linkedid, checklist, author) DO UPDATE SET answers = excluded.answers, "
    "points = excluded.points, max_points = excluded.max_points, agent = excluded.agent, at = excluded.at, "
    "call_started_at = excluded.call_started_at RETURNING *")
#: When the call started: the journal's row, else its transcription job.
_STARTED = ("SELECT 0 AS rank, started_at AS started FROM calls WHERE pbx = :pbx AND linkedid = :linkedid "
            "UNION ALL SELECT 1 AS rank, call_started_at AS started FROM transcription_jobs "
            "WHERE pbx = :pbx AND linkedid = :linkedid ORDER BY rank LIMIT 1")


def comment_from_row(row: Row) -> QaComment:
    return QaComment(id=int(row["id"]), pbx=row["pbx"], linkedid=row["linkedid"], at_second=float(row["at_second"]),
                     text=row["text"], by=row["author"], at=float(row["at"]))


def score_from_row(row: Row) -> QaScore:
    answers = json.loads(row["answers"] or "{}")
    return QaScore(id=int(row["id"]), pbx=row["pbx"], linkedid=row["linkedid"], checklist=row["checklist"],
                   answers={str(k): int(v) for k, v in answers.items()} if isinstance(answers, dict) else {},
                   points=float(row["points"]), max_points=float(row["max_points"]), agent=row["agent"],
                   by=row["author"], at=float(row["at"]))


class QaOps:
    """``add_qa_comment`` ... ``qa_agent_report``: the ``store.repository.QaReviews`` concern."""

    if TYPE_CHECKING:  # given by the backend's base and its RegisterOps (elsewhere in the store's MRO)
        async def _manual(self, work: Callable[[Any], Awaitable[T]]) -> T: ...
        async def _rows_in(self, conn: Any, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...
        async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...

    async def add_qa_comment(self, linkedid: str, *, pbx: str, at_second: float, text: str, by: str,
                             at: float) -> QaComment:
        if at_second < 0:
            raise ValueError("at_second must be >= 0")
        params = {"pbx": pbx, "linkedid": linkedid, "at_second": float(at_second), "text": text, "author": by,
                  "at": float(at)}

        async def work(conn: Any) -> QaComment:
            made = await self._rows_in(
                conn, "INSERT INTO qa_comments (pbx, linkedid, at_second, text, author, at) "
                "VALUES (:pbx, :linkedid, :at_second, :text, :author, :at) RETURNING *", params)
            return comment_from_row(made[0])

        return await self._manual(work)

    async def qa_comments(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> list[QaComment]:
        rows = await self._read("SELECT * FROM qa_comments WHERE pbx = :pbx AND linkedid = :linkedid "
                                "ORDER BY at_second, id", {"pbx": pbx, "linkedid": linkedid})
        return [comment_from_row(r) for r in rows]

    async def save_qa_score(self, linkedid: str, *, pbx: str, checklist: str, answers: dict[str, int],
                            points: float, max_points: float, agent: str | None, by: str, at: float) -> QaScore:
        if any(not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int) for k, v in answers.items()):
            raise ValueError("answers maps checklist items to whole points")
        if max_points < 0 or points < 0:
            raise ValueError("points and max_points must be >= 0")
        params: dict[str, Any] = {
            "pbx": pbx, "linkedid": linkedid, "checklist": checklist, "answers": _encode(dict(answers)),
            "points": float(points), "max_points": float(max_points), "agent": agent, "author": by, "at": float(at)}

        async def work(conn: Any) -> QaScore:
            started = await self._rows_in(conn, _STARTED, {"pbx": pbx, "linkedid": linkedid})
            params["call_started_at"] = float(started[0]["started"]) if started else float(at)
            return score_from_row((await self._rows_in(conn, _SAVE_SCORE, params))[0])

        return await self._manual(work)

    async def qa_scores(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> list[QaScore]:
        rows = await self._read("SELECT * FROM qa_scores WHERE pbx = :pbx AND linkedid = :linkedid ORDER BY at, id",
                                {"pbx": pbx, "linkedid": linkedid})
        return [score_from_row(r) for r in rows]

    async def qa_agent_report(self, *, since: float, until: float, pbxs: Collection[str] | None = None,
                              checklist: str | None = None) -> list[AgentScore]:
        params: dict[str, Any] = {"since": float(since), "until": float(until)}
        where = ["agent IS NOT NULL", "call_started_at >= :since", "call_started_at < :until"]
        chosen = pbx_set(pbxs)
        if chosen is not None:
            where.append(pbx_condition("pbx", chosen, params))
        if checklist is not None:
            params["checklist"] = checklist
            where.append("checklist = :checklist")
        per_call = ("SELECT agent, pbx, linkedid, "
                    "avg(CASE WHEN max_points > 0 THEN 100.0 * points / max_points ELSE 0.0 END) AS percent "
                    f"FROM qa_scores WHERE {' AND '.join(where)} GROUP BY agent, pbx, linkedid")
        rows = await self._read(f"SELECT agent, count(*) AS calls, avg(percent) AS average, min(percent) AS lowest, "
                                f"max(percent) AS highest FROM ({per_call}) s GROUP BY agent ORDER BY agent", params)
        return [AgentScore(agent=r["agent"], calls=int(r["calls"]), average=float(r["average"]),
                           lowest=float(r["lowest"]), highest=float(r["highest"])) for r in rows]
