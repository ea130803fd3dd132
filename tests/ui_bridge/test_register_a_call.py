""""Register now": an answered inbound call of the journal with no contact, registered afterwards through the script.

Over the real system (replay PBX → daemon → panel, WebSocket and HTTP on loopback), the journal and the register
filled with the reports' fixture (tests/store/report_fixture.py: c2 is 101's answered inbound call on ``main`` with no
contact). What a manager relies on: the contact the script registers is linked to the call, so the call leaves the
report's list of calls with no contact; an agent registers only the calls they answered, an admin any (the run opens on
the answering agent's panel); an unknown, unanswered, outbound or already registered call is refused; pressing twice
opens the same run. The reasons read by their titles in the register and the contacts report, from the script version
the contact followed (the id when that version is unknown).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.panel_env import PanelEnv, panel_env
from tests.store.report_fixture import fill
from tests.ui_bridge.test_script_desk import scripts, step
from tests.ui_bridge.wsclient import WsClient, session_cookie

TRACE = "13-blind-transfer-redirect"  # never started: the journal is the fixture's
PERIOD = {"since": "2026-03-10T00:00:00+03:00", "until": "2026-03-12T00:00:00+03:00"}


@asynccontextmanager
async def journal_env() -> AsyncIterator[tuple[PanelEnv, dict[str, int]]]:
    async with panel_env([TRACE], sections=scripts()) as env:
        made = await fill(env.store)
        yield env, made


async def unregistered(env: PanelEnv) -> list[str]:
    async with httpx.AsyncClient(base_url=env.url) as http:
        http.cookies.set("cti_session", await session_cookie(env, "admin"))
        response = await http.get("/api/reports/registered", params=PERIOD)
        assert response.status_code == 200, response.text
        return [c["linkedid"] for c in response.json()["unregistered"]]


async def refused(client: WsClient, fields: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request({"type": "script.start", "channel": "phone", **fields})
    assert reply["type"] == "error", reply
    return reply


async def test_the_agent_registers_their_call_and_it_leaves_the_unregistered_list() -> None:
    async with journal_env() as (env, _):
        anna = await WsClient.connect(env, "anna")
        assert await unregistered(env) == ["c2", "c8"]  # c8 is spb's, a PBX this daemon does not follow
        reply = await anna.request({"type": "script.start", "channel": "phone", "linkedid": "c2", "pbx": "main"})
        assert reply["type"] == "reply", reply
        run = reply["data"]["run"]
        assert reply["data"]["agent"] == "101"
        assert (run["agent"], run["linkedid"], run["caller"], run["channel"], run["call_active"]) == (
            "101", "c2", "79162222222", "phone", False)
        # Pressed again (a double click, a second tab): the same run, not a second one.
        again = await anna.request({"type": "script.start", "channel": "phone", "linkedid": "c2", "pbx": "main"})
        assert again["data"]["run"]["id"] == run["id"]
        run = (await step(anna, run, {"option": "other"}))["run"]
        run = (await step(anna, run, {"note": "спрашивал про гарантию"}))["run"]
        assert run["step"]["kind"] == "register"
        run = (await step(anna, run, {}))["run"]
        assert run["status"] == "registered"
        assert await unregistered(env) == ["c8"]
        contact = await env.store.registered_contact_of_call("c2", pbx="main")
        assert contact is not None
        saved = await env.store.get_registered_contact(contact)
        assert [(c.pbx, c.linkedid, c.recording) for c in saved.calls] == [("main", "c2", "c2.wav")]
        assert (saved.agent, saved.channel, saved.reason) == ("101", "phone", "other")
        # Now registered: a second registration is refused, naming the contact.
        twice = await refused(anna, {"linkedid": "c2", "pbx": "main"})
        assert twice["code"] == "conflict" and f"contact #{contact}" in twice["message"]


async def test_calls_that_cannot_be_registered_are_refused_for_what_they_are() -> None:
    async with journal_env() as (env, _):
        anna = await WsClient.connect(env, "anna")
        cases = [("c3", "forbidden", "answered by 102"),  # another agent's call
                 ("c1", "conflict", "registered already"),  # K1 registered it
                 ("c4", "bad_message", "not an answered inbound call"),  # missed
                 ("c5", "bad_message", "not an answered inbound call"),  # outbound
                 ("c404", "not_found", "no call c404")]
        for linkedid, code, says in cases:
            error = await refused(anna, {"linkedid": linkedid, "pbx": "main"})
            assert (error["code"], says in error["message"]) == (code, True), (linkedid, error)
        error = await refused(anna, {"linkedid": "c8", "pbx": "spb"})  # not a PBX of this daemon
        assert error["code"] == "bad_message" and "no PBX 'spb'" in error["message"]
        visit = await anna.request({"type": "script.start", "channel": "visit", "linkedid": "c2"})
        assert visit["code"] == "bad_message" and "channel phone" in visit["message"]
        qa = await WsClient.connect(env, "qa")
        assert (await refused(qa, {"linkedid": "c2"}))["code"] == "forbidden"
        assert await unregistered(env) == ["c2", "c8"]  # nothing was registered


async def test_an_admin_opens_the_run_on_the_panel_of_the_agent_who_answered() -> None:
    async with journal_env() as (env, _):
        anna, admin = await WsClient.connect(env, "anna"), await WsClient.connect(env, "admin")
        # An admin without an extension may not follow a script, but may hand a call's registration to its agent.
        assert (await refused(admin, {"channel": "visit"}))["code"] == "forbidden"
        reply = await admin.request({"type": "script.start", "channel": "phone", "linkedid": "c2"})
        assert reply["type"] == "reply", reply
        assert reply["data"]["agent"] == "101" and reply["data"]["run"]["agent"] == "101"
        pushed = await anna.wait_for("script.run")
        assert pushed["run"]["id"] == reply["data"]["run"]["id"] and pushed["run"]["linkedid"] == "c2"
        # The run is Anna's: the admin cannot answer its steps, Anna finds it among her runs and follows it.
        run = pushed["run"]
        no = await admin.request({"type": "script.answer", "run": run["id"], "step": "reason",
                                  "answer": {"option": "directions"}})
        assert no["type"] == "error" and no["code"] == "forbidden"
        listed = (await anna.request({"type": "script.runs"}))["data"]["runs"]
        assert [r["id"] for r in listed] == [run["id"]]
        run = (await step(anna, run, {"option": "directions"}))["run"]
        run = (await step(anna, run, {}))["run"]
        run = (await step(anna, run, {}))["run"]
        assert run["status"] == "registered"
        assert await unregistered(env) == ["c8"]


async def test_reasons_read_by_the_titles_of_the_script_version_the_contact_followed() -> None:
    async with journal_env() as (env, made), httpx.AsyncClient(base_url=env.url) as http:
        http.cookies.set("cti_session", await session_cookie(env, "admin"))
        # The daemon kept the loaded version's text: the fixture's contacts followed that very version.
        one = (await http.get(f"/api/contacts/register/{made['K1']}")).json()["contact"]
        assert (one["reason"], one["reason_title"]) == ("repair_private", "Интересуется ремонтом — частник")
        listing = (await http.get("/api/contacts/register", params={"format": "csv"})).content.decode("utf-8-sig")
        assert "Интересуется ремонтом — частник" in listing and "Запчасти" in listing
        report = (await http.get("/api/reports/contacts", params=PERIOD)).json()
        assert {r["reason"]: r["reason_title"] for r in report["reasons"]} == {
            "repair_private": "Интересуется ремонтом — частник", "parts": "Запчасти", "other": "Другое"}
        # A contact of a version the store does not keep reads by its id.
        kept = await env.store.get_registered_contact(made["K4"])
        unknown = await env.store.save_contact(
            _draft_of_version(kept, "000000000000"), repeat_days=180, run_id="unknown-version")
        row = (await http.get(f"/api/contacts/register/{unknown.id}")).json()["contact"]
        assert (row["version"], row["reason"], row["reason_title"]) == ("000000000000", "other", "other")


def _draft_of_version(contact: Any, version: str) -> Any:
    """The fixture's route ``other`` saved as if it had followed another (unkept) version of the script."""
    import dataclasses

    from tests.store.contact_drafts import follow
    from tests.store.report_fixture import T0

    return dataclasses.replace(follow("other", at=T0 + 5000, linkedid=None, caller=None, agent="102"),
                               version=version)
