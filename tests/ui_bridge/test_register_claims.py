"""The register a team shares, over real loopback: replay PBX → daemon → panel → websockets clients.

Two supervisors: one takes a missed number to call it back, the other sees it at once and is refused when they try
too (told who has it); QA sees the claim and may not claim; the claim ends when the call-back reaches the customer
(a replayed outbound call to that number: 16-click-to-call-answered calls 89161234567), by its holder, with a
result, or when its time is up. The grouped listing is ``GET /api/missed/groups``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from store.repository import User
from tests.panel_env import PanelEnv, panel_env
from tests.store.builders import T0, make_call, missed_for
from tests.ui_bridge.wsclient import WsClient, session_cookie
from ui_bridge.auth import hash_password

CALL_BACK = "16-click-to-call-answered"  # agent 101 calls 89161234567, who answers
NUMBER = "79161234567"
BOSS = ("boss-password-1", "admin", None, "Ирина Волкова")


async def with_boss(env: PanelEnv) -> None:
    """A second supervisor beside ``admin`` (Администратор)."""
    env.users["boss"] = BOSS
    await env.store.add_user(User(name="boss", role="admin", display_name=BOSS[3],
                                  password_hash=await asyncio.to_thread(hash_password, BOSS[0])))


async def missed_twice(env: PanelEnv) -> None:
    """Two missed calls of the number the trace calls back, written two ways, and one of another caller."""
    for linkedid, caller, at in (("m1", "8 916 123-45-67", T0), ("m2", "+7 (916) 123-45-67", T0 + 60),
                                 ("m3", "84957770033", T0 + 90)):
        record = make_call(linkedid, caller=caller, started_at=at, missed_reason="abandoned")
        env.store.stage_call(record, missed_for(record), [])
    await env.store.flush()


async def groups(env: PanelEnv, name: str, **params: str) -> dict[str, Any]:
    cookie = await session_cookie(env, name)
    async with httpx.AsyncClient(base_url=env.url, cookies={"cti_session": cookie}) as http:
        answer = await http.get("/api/missed/groups", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_claim_reaches_the_other_supervisor_who_is_refused_and_the_call_back_releases_it() -> None:
    async with panel_env([CALL_BACK], speed=0) as env:
        await with_boss(env)
        await missed_twice(env)
        admin, boss, qa = [await WsClient.connect(env, n) for n in ("admin", "boss", "qa")]
        for client in (admin, boss, qa):
            await client.wait_for("state")

        listed = await groups(env, "qa")
        assert [(g["number"], g["count"]) for g in listed["groups"]] == [("74957770033", 1), (NUMBER, 2)]

        reply = await admin.request({"type": "missed.claim", "number": "8 916 123-45-67"})
        assert reply["type"] == "reply", reply
        assert reply["data"]["claim"]["by_name"] == "Администратор"
        claimed = await boss.wait_for("missed.claimed")
        assert (claimed["claim"]["number"], claimed["claim"]["by"]) == (NUMBER, "admin")
        assert (await qa.wait_for("missed.claimed"))["claim"]["by_name"] == "Администратор"

        refused = await boss.request({"type": "missed.claim", "number": NUMBER})
        assert refused["code"] == "conflict" and "Администратор" in refused["message"]
        assert refused["by"] == "Администратор"  # a field: a panel names the holder in its own language
        by_qa = await qa.request({"type": "missed.claim", "number": NUMBER})
        assert by_qa["code"] == "forbidden"
        not_theirs = await boss.request({"type": "missed.release", "number": NUMBER})
        assert not_theirs["code"] == "conflict"
        listed = await groups(env, "boss")
        assert listed["groups"][1]["claim"]["by_name"] == "Администратор"

        # Agent 101 calls the number back and the customer answers: the entries close, the claim ends by itself.
        env.start_calls()
        released = await boss.wait_for("missed.released", timeout=30)
        assert (released["number"], released["by"], released["why"]) == (NUMBER, "admin", "call_back")
        await admin.wait_for("missed.released", why="call_back")
        assert await env.store.list_claims() == []
        assert [g["number"] for g in (await groups(env, "admin"))["groups"]] == ["74957770033"]


async def test_a_result_is_recorded_shown_to_all_and_ends_the_claim_and_time_ends_a_forgotten_one() -> None:
    async with panel_env([CALL_BACK], speed=0, sections={"register": "claim_minutes = 0.02"}) as env:
        await with_boss(env)
        await missed_twice(env)
        admin, boss = await WsClient.connect(env, "admin"), await WsClient.connect(env, "boss")
        for client in (admin, boss):
            await client.wait_for("state")
        assert (await boss.request({"type": "missed.claim", "number": NUMBER}))["type"] == "reply"
        reply = await boss.request({"type": "missed.result", "number": NUMBER, "result": "no_answer",
                                    "comment": "не берёт трубку"})
        assert reply["type"] == "reply", reply
        recorded = await admin.wait_for("missed.result_recorded")
        assert (recorded["result"]["result"], recorded["result"]["by"], recorded["result"]["comment"]) == (
            "no_answer", "boss", "не берёт трубку")
        assert len(recorded["result"]["entries"]) == 2
        assert (await admin.wait_for("missed.released", why="result"))["by"] == "boss"
        row = (await groups(env, "admin"))["groups"][1]
        assert [r["result"] for r in row["results"]] == ["no_answer"] and row["claim"] is None

        # A claim nobody ends lasts claim_minutes (1.2 s here), then every supervisor sees it released.
        assert (await admin.request({"type": "missed.claim", "number": "84957770033"}))["type"] == "reply"
        timed_out = await boss.wait_for("missed.released", timeout=15, why="timeout")
        assert (timed_out["number"], timed_out["by"]) == ("74957770033", "admin")

        # "Reached" closes the number's entries: the row leaves the register.
        reached = await admin.request({"type": "missed.result", "number": NUMBER, "result": "reached"})
        assert reached["type"] == "reply"
        closed = await boss.wait_for("missed.updated")
        assert closed["entry"]["status"] == "closed"
        assert [g["number"] for g in (await groups(env, "admin"))["groups"]] == ["74957770033"]
        bad = await admin.request({"type": "missed.result", "number": NUMBER, "result": "maybe"})
        assert bad["code"] == "bad_message"
        nothing = await admin.request({"type": "missed.claim", "number": NUMBER})
        assert nothing["code"] == "not_found"
