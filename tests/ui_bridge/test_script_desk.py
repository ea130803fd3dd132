"""The contact script at the agent's panel, over the WebSocket on a replayed call (real daemon, replay PBX over TCP).

The shipped Russian example (``examples/scripts/car-service.ru.toml``) is followed the way an agent's panel follows
it: the run opens by itself when agent 101 answers the recorded call, each step is answered with a request, and the
transfer the script asks for reaches the replay PBX as the exact AMI action; the live replay (``asterisk/replay/
live.py``) rings the master's phone and answers it, or does not in time. What the agent relies on: the run is
theirs alone, a bad answer is refused with its message, a reload (a new socket) finds the run at its step, a call that
ends mid-script leaves the run open to finish or discard, and the registered contact records the script's version.
"""

from __future__ import annotations

from typing import Any

from asterisk.messages import AmiMessage
from tests.daemon.conftest import REPO, leg_event
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import WsClient

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 → DID 74950000101 → agent 101 answers
AGENT_CHANNEL = "PJSIP/101-00000025"
CUSTOMER_CHANNEL = "PJSIP/trunk-00000024"
SCRIPTS = REPO / "examples" / "scripts"


def scripts(timeout: float = 30.0) -> dict[str, str]:
    return {"scripts": f'folder = "{SCRIPTS}"\ndefault = "car-service"\ntransfer_timeout = {timeout}'}


def actions(env: PanelEnv, name: str) -> list[AmiMessage]:
    return [a.message for a in env.replay.received_actions if a.message.action == name]


def fields(msg: AmiMessage) -> dict[str, str]:
    return {k: v for k, v in msg.headers if k not in ("Action", "ActionID")}


async def launched(env: PanelEnv, anna: WsClient) -> dict[str, Any]:
    """Take the call to 101's answer (the PBX held there) and return the run pushed to Anna's panel."""
    # Held once both are in the bridge (the agent's leg enters first): an attended transfer needs its bridge peer.
    await env.serve_through(leg_event("BridgeEnter", CUSTOMER_CHANNEL), "101 talking with the caller")
    answered = await anna.wait_for("call.answered", timeout=20, answered_by="101")
    pushed = await anna.wait_for("script.run")
    run: dict[str, Any] = pushed["run"]
    assert run["linkedid"] == answered["linkedid"] and pushed["pbx"] == "main"
    return run


async def step(client: WsClient, run: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request({"type": "script.answer", "run": run["id"], "step": run["step"]["id"],
                                  "answer": value})
    assert reply["type"] == "reply", reply
    return reply["data"]


async def test_the_private_client_route_to_a_master_who_answers_registers_the_contact() -> None:
    async with panel_env([TRANSFER], speed=0, replay_options={"live": True}, sections=scripts()) as env:
        anna, oleg = await WsClient.connect(env, "anna"), await WsClient.connect(env, "oleg")
        run = await launched(env, anna)
        assert (run["status"], run["script"], run["channel"], run["agent"], run["caller"]) == (
            "open", "car-service", "phone", "101", "79160001313")
        assert run["caller_display"] == "+7 916 000-13-13" and run["call_active"] and not run["can_go_back"]
        assert run["step"]["id"] == "reason" and run["step"]["kind"] == "choice"
        assert "Интересуется ремонтом — частник" in [o["label"] for o in run["step"]["options"]]

        run = (await step(anna, run, {"option": "repair_private"}))["run"]
        assert (run["step"]["id"], run["step"]["car"], run["route"], run["reason"]) == (
            "private_client", "required", ["Причина обращения"], "repair_private")
        # A bad answer: the car's plate is required for a new client; the step waits, its message per field.
        refused = await step(anna, run, {"new": {"make": "Шкода"}})
        assert refused["refused"]["code"] == "bad_value" and refused["refused"]["fields"] == {"plate": "required"}
        assert refused["run"]["step"]["id"] == "private_client"

        # A reload mid-script: a new socket asks for its runs and finds this one at the same step.
        again = await WsClient.connect(env, "anna")
        listed = (await again.request({"type": "script.runs"}))["data"]
        assert [(r["id"], r["step"]["id"]) for r in listed["runs"]] == [(run["id"], "private_client")]
        assert listed["default"] == "car-service"

        run = (await step(anna, run, {"new": {"make": "Ылщвф", "model": "Octavia", "plate": "а123вс77"}}))["run"]
        assert run["step"]["id"] == "private_master" and run["step"]["mode"] == "attended"
        assert [e["id"] for e in run["step"]["employees"]] == ["dmitry", "elena"]
        run = (await step(again, run, {"employee": "dmitry"}))["run"]  # the other tab answers: the same run
        assert run["transfer"]["employee"]["id"] == "dmitry" and run["transfer"]["state"] == "pending"
        assert fields(actions(env, "Atxfer")[-1]) == {"Channel": AGENT_CHANNEL, "Exten": "104", "Context": "transfer"}
        # The master's phone answers (the live replay): the result comes from the PBX, no click.
        moved = await anna.wait_for("script.run", timeout=20, run=_at(anna, "request_registered"))
        assert moved["run"]["notice"] == "transfer_answered"
        # A client cannot claim a transfer's result itself.
        forged = await anna.request({"type": "script.answer", "run": run["id"], "step": "private_master",
                                     "answer": {"result": "answered"}})
        assert forged["type"] == "error" and forged["code"] == "bad_message"

        done = (await step(anna, moved["run"], {}))["run"]
        assert done["status"] == "registered" and done["step"] is None
        assert (await again.request({"type": "script.runs"}))["data"]["runs"] == []
        [contact] = await env.store.list_registered_contacts()
        [kept] = [await env.store.get_script_run(run["id"])]
        assert (contact.script, contact.version, contact.reason, contact.agent) == (
            "car-service", kept.version, "repair_private", "101")
        assert contact.employee is not None and contact.employee.id == "dmitry" and contact.transfer_answered
        assert contact.client_new and [m.stage for m in contact.stages] == ["request"]
        # Oleg (102) never saw Anna's run.
        assert oleg.of_type("script.run") == []


def _at(client: WsClient, step_id: str) -> Any:
    """A ``wait_for`` match on a pushed run's ``run`` field: the run at ``step_id``."""

    class AtStep:
        def __eq__(self, run: object) -> bool:
            return isinstance(run, dict) and (run.get("step") or {}).get("id") == step_id

    return AtStep()


async def test_a_master_who_does_not_answer_in_time_leads_to_the_reminder_step() -> None:
    # The live replay's master answers two recorded seconds after ringing; at speed 0.1 that is 20 s, far beyond the
    # script's transfer_timeout.
    async with panel_env([TRANSFER], speed=0.1, replay_options={"live": True}, sections=scripts(0.5)) as env:
        anna = await WsClient.connect(env, "anna")
        run = await launched(env, anna)
        run = (await step(anna, run, {"option": "repair_private"}))["run"]
        run = (await step(anna, run, {"new": {"make": "Skoda", "plate": "А 123 ВС 77"}}))["run"]
        run = (await step(anna, run, {"employee": "elena"}))["run"]
        assert fields(actions(env, "Atxfer")[-1]) == {"Channel": AGENT_CHANNEL, "Exten": "105", "Context": "transfer"}
        moved = (await anna.wait_for("script.run", timeout=20, run=_at(anna, "callback")))["run"]
        assert moved["notice"] == "transfer_not_answered"
        # The reminder goes to the master who did not answer, for the caller's number, unless the agent says else.
        assert moved["step"]["employee"]["id"] == "elena" and moved["step"]["number"] == "79160001313"
        assert not moved["can_go_back"]  # not over a transfer that was made
        refused = await step(anna, moved, {"due": "вчера"})
        assert refused["refused"]["code"] == "bad_value" and set(refused["refused"]["fields"]) == {"due"}
        run = (await step(anna, moved, {"due": "+1h", "note": "перезвонить после обеда"}))["run"]
        assert run["step"]["id"] == "request_registered"
        [reminder] = await env.store.list_reminders()  # kept for the master (tests/ui_bridge/test_reminders.py)
        assert (reminder.employee, reminder.extension, reminder.number, reminder.run_id) == (
            "elena", "105", "79160001313", run["id"])


async def test_a_call_that_ends_mid_script_leaves_the_run_open_until_discarded_with_a_reason() -> None:
    async with panel_env([TRANSFER], speed=0, replay_options={"live": True}, sections=scripts()) as env:
        anna = await WsClient.connect(env, "anna")
        run = await launched(env, anna)
        run = (await step(anna, run, {"option": "other"}))["run"]
        env.start_calls()  # the recorded call goes on to its end (the trace's own transfer, then the hang-up)
        over = await anna.wait_for("script.run", timeout=20, run=_Over())
        assert over["run"]["status"] == "open" and over["run"]["step"]["id"] == "other"
        listed = (await anna.request({"type": "script.runs"}))["data"]["runs"]
        assert [(r["id"], r["call_active"]) for r in listed] == [(run["id"], False)]
        empty = await anna.request({"type": "script.discard", "run": run["id"], "reason": ""})
        assert empty["type"] == "error" and empty["code"] == "bad_message"
        closed = (await anna.request({"type": "script.discard", "run": run["id"],
                                      "reason": "клиент положил трубку"}))["data"]["run"]
        assert closed["status"] == "discarded" and closed["discard_reason"] == "клиент положил трубку"
        assert (await anna.request({"type": "script.runs"}))["data"]["runs"] == []
        late = await step(anna, {"id": run["id"], "step": {"id": "other"}}, {"note": "поздно"})
        assert late["refused"]["code"] == "finished"


class _Over:
    def __eq__(self, run: object) -> bool:
        return isinstance(run, dict) and run.get("call_active") is False


async def test_another_agents_run_is_not_theirs_to_answer_and_a_run_can_be_started_by_hand() -> None:
    async with panel_env([TRANSFER], speed=0, replay_options={"live": True}, sections=scripts()) as env:
        anna, oleg = await WsClient.connect(env, "anna"), await WsClient.connect(env, "oleg")
        run = await launched(env, anna)
        stolen = await oleg.request({"type": "script.answer", "run": run["id"], "step": "reason",
                                     "answer": {"option": "parts"}})
        assert stolen["type"] == "error" and stolen["code"] == "forbidden"
        missing = await oleg.request({"type": "script.back", "run": run["id"] + 1000})
        assert missing["type"] == "error" and missing["code"] == "not_found"
        walk_in = (await oleg.request({"type": "script.start", "channel": "visit"}))["data"]["run"]
        assert (walk_in["channel"], walk_in["linkedid"], walk_in["agent"], walk_in["step"]["id"]) == (
            "visit", None, "102", "reason")
        assert (await oleg.wait_for("script.run"))["run"]["id"] == walk_in["id"]
        # A transfer on a run with no call cannot be made: the script goes on as for a master who did not answer.
        walk_in = (await step(oleg, walk_in, {"option": "parts"}))["run"]
        walk_in = (await step(oleg, walk_in, {"part": "фильтр"}))["run"]
        moved = (await step(oleg, walk_in, {"employee": "parts-desk"}))["run"]
        assert moved["step"]["id"] == "callback" and moved["notice"] == "transfer_failed"
        qa = await WsClient.connect(env, "qa")
        refused = await qa.request({"type": "script.runs"})
        assert refused["type"] == "error" and refused["code"] == "forbidden"
