"""Quality assurance of calls: comments pinned to a moment, scores against the centre's checklist (issue 14).

Plain values the store keeps and the QA page shows. The checklist itself (its items, their points and weights) is
configuration (``[qa]``); how a filled form becomes a score is :func:`score_of` here, so the page, the API and the
per-agent report agree on one figure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QaComment:
    """A QA remark pinned to a moment of a call (seconds into its recording)."""

    id: int
    pbx: str
    linkedid: str
    at_second: float
    text: str
    by: str
    at: float


@dataclass(frozen=True, slots=True)
class QaScore:
    """One reviewer's filled checklist for one call: the answers per item, and the score they make.

    ``points`` out of ``max_points`` are the weighted sums (:func:`score_of`); ``agent`` is the extension that
    answered the call, so the per-agent report needs no join. A reviewer saving again replaces their score.
    """

    id: int
    pbx: str
    linkedid: str
    checklist: str
    answers: dict[str, int]
    points: float
    max_points: float
    agent: str | None
    by: str
    at: float

    @property
    def percent(self) -> float:
        return 100.0 * self.points / self.max_points if self.max_points else 0.0


@dataclass(frozen=True, slots=True)
class AgentScore:
    """One agent's line of the per-agent QA report over a period."""

    agent: str
    calls: int
    #: The mean of the calls' percentages (0..100).
    average: float
    lowest: float
    highest: float
