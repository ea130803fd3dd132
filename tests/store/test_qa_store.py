"""QA's comments and scores kept by the store, against the interface (every store runs this suite: conftest).

What the QA page relies on: comments read back in the order of their moments in the call; a reviewer's score saved
again replaces theirs while another reviewer's stays; the per-agent report over a period of call starts counts each
call once (its reviewers averaged), keeps PBXs and checklists apart, and survives a restart.
"""

from __future__ import annotations

import pytest

from cti.qa import AgentScore
from cti.transcripts import EngineChoice, NewJob
from store.repository import Store
from tests.store.builders import T0, make_call
from tests.store.conftest import OpenStore

GREETING = {"greeting": 1, "identified": 1, "booking": 0, "goodbye": 1}


async def test_comments_read_back_in_the_order_of_their_moments(store: Store) -> None:
    late = await store.add_qa_comment("c1", pbx="main", at_second=75.5, text="не предложил запись", by="qa",
                                      at=T0 + 10)
    early = await store.add_qa_comment("c1", pbx="main", at_second=3.25, text="«Здравствуйте» — хорошо <b>", by="boss",
                                       at=T0 + 20)
    await store.add_qa_comment("c1", pbx="spb", at_second=1, text="другая АТС", by="qa", at=T0 + 30)
    assert (late.pbx, late.linkedid, late.at_second, late.text, late.by, late.at) == (
        "main", "c1", 75.5, "не предложил запись", "qa", T0 + 10)
    assert await store.qa_comments("c1") == [early, late]
    assert [c.text for c in await store.qa_comments("c1", pbx="spb")] == ["другая АТС"]
    assert await store.qa_comments("nothing") == []
    with pytest.raises(ValueError):
        await store.add_qa_comment("c1", pbx="main", at_second=-1, text="x", by="qa", at=T0)


async def test_a_reviewer_saving_again_replaces_their_score_and_another_reviewer_keeps_theirs(store: Store) -> None:
    first = await store.save_qa_score("c1", pbx="main", checklist="service", answers=GREETING, points=3, max_points=4,
                                      agent="101", by="qa", at=T0 + 100)
    assert (first.answers, first.points, first.max_points, first.agent, first.by, first.percent) == (
        GREETING, 3.0, 4.0, "101", "qa", 75.0)
    boss = await store.save_qa_score("c1", pbx="main", checklist="service", answers={**GREETING, "booking": 1},
                                     points=4, max_points=4, agent="101", by="boss", at=T0 + 110)
    again = await store.save_qa_score("c1", pbx="main", checklist="service", answers={**GREETING, "goodbye": 0},
                                      points=2, max_points=4, agent="101", by="qa", at=T0 + 120)
    assert again.id == first.id and (again.points, again.at, again.answers["goodbye"]) == (2.0, T0 + 120, 0)
    assert await store.qa_scores("c1") == [boss, again]
    assert await store.qa_scores("c1", pbx="spb") == []
    with pytest.raises(ValueError):
        await store.save_qa_score("c1", pbx="main", checklist="service", answers={"greeting": "yes"},  # type: ignore[dict-item]
                                  points=1, max_points=4, agent="101", by="qa", at=T0)


async def test_the_per_agent_report_over_the_calls_started_in_a_period(open_store: OpenStore) -> None:
    store = await open_store()
    # Calls of the journal: the report reads when each started, not when it was scored.
    for linkedid, agent, started in (("a1", "101", T0), ("a2", "101", T0 + 3600), ("b1", "102", T0 + 7200),
                                     ("old", "101", T0 - 86400)):
        store.stage_call(make_call(linkedid, answered=True, answered_by=agent, started_at=started), None, [])
    await store.flush()
    # A call the journal does not hold, but its transcription job knows when it started.
    await store.enqueue_transcription(NewJob(pbx="main", linkedid="job-only", sources=(), choice=EngineChoice(),
                                             call_started_at=T0 + 60), at=T0 + 100)
    scored_at = T0 + 90000  # a day later
    await store.save_qa_score("a1", pbx="main", checklist="service", answers={}, points=3, max_points=4, agent="101",
                              by="qa", at=scored_at)
    await store.save_qa_score("a1", pbx="main", checklist="service", answers={}, points=4, max_points=4, agent="101",
                              by="boss", at=scored_at)  # the same call, two reviewers: 75 and 100 -> 87.5
    await store.save_qa_score("a2", pbx="main", checklist="service", answers={}, points=1, max_points=4, agent="101",
                              by="qa", at=scored_at)
    await store.save_qa_score("job-only", pbx="main", checklist="service", answers={}, points=2, max_points=4,
                              agent="101", by="qa", at=scored_at)
    await store.save_qa_score("b1", pbx="main", checklist="service", answers={}, points=5, max_points=5, agent="102",
                              by="qa", at=scored_at)
    await store.save_qa_score("b1", pbx="main", checklist="sales", answers={}, points=0, max_points=5, agent="102",
                              by="qa", at=scored_at)
    await store.save_qa_score("old", pbx="main", checklist="service", answers={}, points=0, max_points=4, agent="101",
                              by="qa", at=scored_at)
    await store.save_qa_score("x1", pbx="spb", checklist="service", answers={}, points=0, max_points=0, agent="101",
                              by="qa", at=T0 + 10)  # no call, no job: its own time; no points possible: 0 %
    await store.save_qa_score("nobody", pbx="main", checklist="service", answers={}, points=1, max_points=1,
                              agent=None, by="qa", at=T0 + 10)  # no agent answered: in no agent's line

    day = {"since": T0, "until": T0 + 86400}
    assert await store.qa_agent_report(**day, checklist="service", pbxs=("main",)) == [
        AgentScore(agent="101", calls=3, average=(87.5 + 25 + 50) / 3, lowest=25.0, highest=87.5),
        AgentScore(agent="102", calls=1, average=100.0, lowest=100.0, highest=100.0)]
    both = await store.qa_agent_report(**day)
    assert [(s.agent, s.calls) for s in both] == [("101", 4), ("102", 1)]  # b1 once, both checklists averaged
    assert both[1].average == 50.0 and both[0].lowest == 0.0
    assert await store.qa_agent_report(**day, pbxs=("spb",)) == [
        AgentScore(agent="101", calls=1, average=0.0, lowest=0.0, highest=0.0)]
    assert [s.agent for s in await store.qa_agent_report(since=T0 - 86400, until=T0)] == ["101"]
    assert await store.qa_agent_report(since=T0 + 86400, until=T0 + 2 * 86400) == []
    await store.close()
    again = await open_store()
    assert await again.qa_agent_report(**day, checklist="service", pbxs=("main",)) == [
        AgentScore(agent="101", calls=3, average=(87.5 + 25 + 50) / 3, lowest=25.0, highest=87.5),
        AgentScore(agent="102", calls=1, average=100.0, lowest=100.0, highest=100.0)]
