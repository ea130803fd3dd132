"""Quality assurance of calls: comments pinned to a moment, scores against the centre's checklist (issue 14).

Plain values the store keeps and the QA page shows. The checklist itself (its items, their points and weights) is
configuration (``[qa]``); how a filled form becomes a score is :func:`score_of` here, so the page, the API and the
per-agent report agree on one figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


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


# -- the checklist -------------------------------------------------------------------------------------------------

#: How an item is answered: ``yes_no`` (0 or 1: a checkbox) or ``points`` (0..N).
ItemKind = Literal["yes_no", "points"]
#: The most points one item may give (a form of sliders up to 100 is no checklist any more).
MAX_ITEM_POINTS = 100


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One line of the centre's checklist: ``greeting`` «Поздоровался и представился», worth ``points`` (1: a yes/no
    item, answered 0 or 1; N: answered 0..N), counted ``weight`` times in the call's score."""

    key: str
    title: str
    points: int = 1
    weight: float = 1.0

    @property
    def kind(self) -> ItemKind:
        return "yes_no" if self.points == 1 else "points"


@dataclass(frozen=True, slots=True)
class Checklist:
    """The centre's checklist (``[qa]``): its name (what a score records, so a report can keep the checklist's
    versions apart) and its items in the form's order."""

    name: str
    items: tuple[ChecklistItem, ...]

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("a checklist needs at least one item")
        seen: set[str] = set()
        for item in self.items:
            if item.key in seen:
                raise ValueError(f"checklist item {item.key!r} is listed twice")
            seen.add(item.key)
            if not 1 <= item.points <= MAX_ITEM_POINTS:
                raise ValueError(f"checklist item {item.key!r}: points is 1 (yes/no) to {MAX_ITEM_POINTS}")
            if not (item.weight > 0 and item.weight < float("inf")):
                raise ValueError(f"checklist item {item.key!r}: weight is a positive number")

    @property
    def max_points(self) -> float:
        return sum(item.points * item.weight for item in self.items)


def score_of(checklist: Checklist, answers: Mapping[str, int]) -> tuple[float, float]:
    """The weighted points of a filled form, and the most it could have: ``(points, max_points)``.

    Every item must be answered, with a whole number from 0 to its points (a yes/no item: 0 or 1); an answer to no
    item of the checklist is refused too, so a form filled against another version of the checklist never counts.
    Raises ValueError naming the item.
    """
    unknown = [key for key in answers if key not in {item.key for item in checklist.items}]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is no item of the checklist {checklist.name!r}")
    points = 0.0
    for item in checklist.items:
        if item.key not in answers:
            raise ValueError(f"{item.key!r} ({item.title}) is not answered")
        value = answers[item.key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{item.key!r}: the answer is a whole number, not {value!r}")
        if not 0 <= value <= item.points:
            allowed = "0 or 1" if item.kind == "yes_no" else f"0 to {item.points}"
            raise ValueError(f"{item.key!r}: {value} is out of range ({allowed})")
        points += value * item.weight
    return points, checklist.max_points
