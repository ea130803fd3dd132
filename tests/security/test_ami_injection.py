"""AMI header injection (issue 9, finding 1): no request can make the daemon send an action it was not asked for.

An AMI action is ``Key: Value`` lines ended by a blank line, and Asterisk ends a line at LF (with or without a
CR before it) and a header's text at NUL (``manager.c``: ``get_input``). A value with a line break in it
therefore adds headers, or, with a blank line, whole actions: ``"queue": "x\\r\\n\\r\\nAction: Originate…"``
once made the daemon place a call running ``System``. Two defences, both tested here:

- at the edge, every request field that reaches AMI has a pattern (``ui_bridge/messages.py``): the request
  gets a ``bad_message`` error with its id, nothing reaches the PBX, the socket stays open;
- at serialisation, ``AmiMessage.serialize()`` and ``action()`` refuse (raise :class:`AmiHeaderError`, never
  strip) a CR, LF, NUL, U+0085, U+2028 or U+2029 in any key or value, and a key that is empty or holds ``:``
  or whitespace; on the client's send path a refused action is not written, leaves no pending answer, and
  the connection carries on.

The replay PBX reads actions the way Asterisk does (bare LF ends a line, NUL ends a header's text), so what
it records is what a real PBX would have run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from pydantic import ValidationError

from asterisk.connection import AmiClient
from asterisk.messages import AmiHeaderError, AmiMessage, action
from tests.conftest import ReplayFactory
from tests.daemon.conftest import leg_event
from tests.integration.conftest import Recorder, ami_settings, running, trace, until
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import WsClient
from ui_bridge import messages as m

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 → agent 101 (anna) answers; 104 is the transfer target
CUSTOMER_CHANNEL = "PJSIP/trunk-00000024"

#: Everything that ends a line somewhere: Asterisk (LF, CRLF; NUL ends the header's text), other AMI
#: clients and proxies (CR), Unicode-aware line splitters (NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR).
BREAKS = {"CR": "\r", "LF": "\n", "CRLF": "\r\n", "NUL": "\x00", "U+0085": "\x85", "U+2028": "\u2028",
          "U+2029": "\u2029"}
#: CRLF too: followed by ``Key: value`` it makes two well-formed lines of one value, which a check of the joined
#: frame's shape alone lets through.
FORBIDDEN_CHARS = {"CR": "\r", "LF": "\n", "CRLF": "\r\n", "NUL": "\x00", "U+0085": "\x85", "U+2028": "\u2028",
                   "U+2029": "\u2029"}


def smuggle(base: str, brk: str) -> str:
    """``base`` followed by a whole second action: an Originate running System (short enough for every
    length limit, so that only the line breaks can be what refuses it)."""
    return f"{base}{brk}{brk}Action: Originate{brk}Channel: PJSIP/105{brk}Application: System"


# -- serialisation refuses ------------------------------------------------------------------------------


@pytest.mark.parametrize("char", FORBIDDEN_CHARS.values(), ids=FORBIDDEN_CHARS.keys())
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_serialize_and_action_refuse_a_line_break_or_nul_in_a_value(char: str, where: str) -> None:
    value = {"start": f"{char}x", "middle": f"x{char}Action: Hangup", "end": f"x{char}"}[where]
    with pytest.raises(AmiHeaderError) as refused:
        action("QueuePause", Interface="PJSIP/101", Reason=value)
    assert refused.value.key == "Reason" and "Reason" in str(refused.value)
    assert "Hangup" not in str(refused.value), "the message names the key, it does not echo the value"
    msg = AmiMessage(headers=[("Action", "QueuePause"), ("Interface", "PJSIP/101"), ("Reason", value)])
    with pytest.raises(AmiHeaderError) as refused:
        msg.serialize()
    assert refused.value.key == "Reason"
    assert isinstance(refused.value, ValueError)
    # Repeated keys are checked too, not only the first of them.
    with pytest.raises(AmiHeaderError):
        action("Originate", ("Variable", "A=1"), ("Variable", f"B={value}"), Channel="PJSIP/101")


@pytest.mark.parametrize("char", FORBIDDEN_CHARS.values(), ids=FORBIDDEN_CHARS.keys())
def test_serialize_and_action_refuse_a_line_break_or_nul_in_a_key(char: str) -> None:
    with pytest.raises(AmiHeaderError):
        action("Ping", (f"X{char}Action", "Hangup"))
    with pytest.raises(AmiHeaderError):
        AmiMessage(headers=[("Action", "Ping"), (f"X{char}", "1")]).serialize()
    with pytest.raises(AmiHeaderError):
        action(f"Ping{char}")  # the action's name is the value of the Action header


@pytest.mark.parametrize("key", ["", "Channel: PJSIP/105", "Chan:nel", "Chan nel", "Chan\tnel", " Channel",
                                 "Channel ", "Chan\u00a0nel", "Chan\x1bnel"])
def test_a_key_that_is_empty_or_holds_a_colon_whitespace_or_a_control_character_is_refused(key: str) -> None:
    with pytest.raises(AmiHeaderError):
        action("Ping", (key, "1"))
    with pytest.raises(AmiHeaderError):
        AmiMessage(headers=[("Action", "Ping"), (key, "1")]).serialize()


def test_an_unpaired_surrogate_is_refused_not_a_unicode_error() -> None:
    with pytest.raises(AmiHeaderError):
        AmiMessage(headers=[("Action", "QueuePause"), ("Reason", "x\ud800")]).serialize()


def test_ordinary_actions_serialise_exactly_as_before() -> None:
    msg = action("Originate", ("Variable", "A=1"), ("Variable", "B=2"), Channel="PJSIP/101",
                 CallerID='"Анна Смирнова" <101>', Reason="обед: tab\there, colon: fine, 'quotes' \"too\"")
    assert msg.serialize() == (
        "Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\nChannel: PJSIP/101\r\n"
        "CallerID: \"Анна Смирнова\" <101>\r\nReason: обед: tab\there, colon: fine, 'quotes' \"too\"\r\n\r\n"
    ).encode()
    assert AmiMessage(headers=[("Action", "Ping"), ("Empty", "")]).serialize() == b"Action: Ping\r\nEmpty: \r\n\r\n"


async def test_a_refused_action_is_not_written_leaves_nothing_pending_and_the_connection_carries_on(
    replay_pbx: ReplayFactory,
) -> None:
    pbx = await replay_pbx([trace(TRANSFER)], speed=0)
    client = AmiClient(ami_settings(pbx), Recorder())
    async with running(client):
        await client.wait_connected(5)
        protocol = client._protocol
        assert protocol is not None
        # Login, the PBX's clock and the resync snapshot are asked for and answered.
        await until(lambda: any(a.message.action == "QueueStatus" for a in pbx.received_actions)
                    and not protocol._pending)
        sent_before = len(pbx.received_actions)
        hostile = AmiMessage(headers=[("Action", "QueuePause"), ("Interface", "PJSIP/101"),
                                      ("Queue", "x\r\n\r\nAction: Hangup\r\nChannel: " + CUSTOMER_CHANNEL)])
        with pytest.raises(AmiHeaderError):
            await client.send_action(hostile)
        assert not protocol._pending, "no answer is awaited for an action that was never written"
        answer = await client.send_action(action("Ping"))
        assert answer.response.response == "Success"
        assert client.connected and client.connections == 1
        assert {a.message.action for a in pbx.received_actions[sent_before:]} == {"Ping"}


async def test_a_secret_with_a_line_break_is_never_sent_and_the_client_says_why(replay_pbx: ReplayFactory) -> None:
    """A secret read from a file keeps its newline. The config refuses it at load time; and should settings
    ever be built without that check, the Login is still not sent (half of it would be a second action),
    the reason is in ``last_error``, and the client keeps retrying with back-off instead of dying."""
    pbx = await replay_pbx([trace(TRANSFER)], speed=0)
    with pytest.raises(ValidationError, match="control character"):
        ami_settings(pbx, secret="cti-secret\n")
    unchecked = ami_settings(pbx).model_copy(update={"secret": "cti-secret\n"})  # model_copy does not validate
    client = AmiClient(unchecked, Recorder())
    async with running(client, wait=False) as task:
        await until(lambda: client._attempts >= 2)
        assert not task.done(), "the client gave up"
        assert client.last_error is not None and "not sent" in client.last_error and "'Secret'" in client.last_error
        assert "cti-secret" not in client.last_error
        assert not client.connected
    assert [a.message.action for a in pbx.received_actions] == []


# -- the replay PBX reads actions as Asterisk does --------------------------------------------------------


async def test_the_replay_pbx_splits_actions_at_bare_lf_and_cuts_headers_at_nul(
    replay_pbx: ReplayFactory,
) -> None:
    """What makes the end-to-end test below meaningful: a bare-LF injection is two actions on a real PBX."""
    pbx = await replay_pbx([trace(TRANSFER)], speed=0)
    reader, writer = await asyncio.open_connection(*pbx.address)
    try:
        await reader.readline()  # the banner
        writer.write(b"Action: Login\r\nUsername: cti\r\nSecret: cti-secret\r\nEvents: off\r\n\r\n"
                     b"Action: QueuePause\r\nInterface: PJSIP/101\r\nQueue: x\n\nAction: Originate\n"
                     b"Channel: PJSIP/105\nApplication: System\r\nActionID: a1\r\n\r\n"
                     b"Action: QueuePause\r\nReason: ok\x00Action: Hangup\r\nActionID: a2\r\n\r\n")
        await writer.drain()
        await until(lambda: len(pbx.received_actions) >= 4)
    finally:
        writer.close()
    got = [a.message.headers for a in pbx.received_actions]
    assert got[1:] == [
        [("Action", "QueuePause"), ("Interface", "PJSIP/101"), ("Queue", "x")],
        [("Action", "Originate"), ("Channel", "PJSIP/105"), ("Application", "System"), ("ActionID", "a1")],
        [("Action", "QueuePause"), ("Reason", "ok"), ("ActionID", "a2")],
    ]


# -- the edge: request models ---------------------------------------------------------------------------

#: Valid requests of every command that reaches AMI, by case name; ``{L}`` is the call's linkedid.
COMMANDS: dict[str, dict[str, Any]] = {
    "originate": {"type": "originate", "number": "8 (916) 123-45-67", "extension": "101"},
    "transfer-blind": {"type": "transfer", "linkedid": "{L}", "target": "104", "mode": "blind"},
    "transfer-attended": {"type": "transfer", "linkedid": "{L}", "target": "600", "mode": "attended"},
    "hangup": {"type": "hangup", "linkedid": "{L}"},
    "queue.pause": {"type": "queue.pause", "queue": "support", "reason": "обед", "extension": "101"},
    "queue.unpause": {"type": "queue.unpause", "queue": "support", "extension": "101"},
}
#: The action each command becomes, and the headers it may have.
EXPECTED = {
    "originate": ("Originate", {"Channel", "Context", "Exten", "Priority", "CallerID", "Timeout", "Async"}),
    "transfer-blind": ("Redirect", {"Channel", "Context", "Exten", "Priority"}),
    "transfer-attended": ("Atxfer", {"Channel", "Context", "Exten"}),
    "hangup": ("Hangup", {"Channel", "Cause"}),
    "queue.pause": ("QueuePause", {"Interface", "Paused", "Queue", "Reason"}),
    "queue.unpause": ("QueuePause", {"Interface", "Paused", "Queue"}),
}
#: The finding's own payloads, verbatim.
FINDING_CASES: list[tuple[str, dict[str, Any]]] = [
    ("finding-1", {"type": "queue.pause", "queue": "x\r\n\r\nAction: Originate\r\nChannel: PJSIP/105\r\n"
                                                   "Application: System", "reason": "\r\nData: id\r\nAsync: true"}),
    ("finding-1-reason", {"type": "queue.pause", "reason": "\r\nData: id\r\nAsync: true"}),
    ("finding-1-hangup", {"type": "queue.pause", "reason": f"x\r\n\r\nAction: Hangup\r\nChannel: {CUSTOMER_CHANNEL}"}),
    ("finding-1-queue-only", {"type": "queue.pause",
                              "queue": "x\r\n\r\nAction: Originate\r\nChannel: PJSIP/105\r\nApplication: System"}),
]


def hostile_cases() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(case id, command, hostile field, request) for every string field of every command, ``id`` included."""
    cases: list[tuple[str, str, str, dict[str, Any]]] = []
    for command, request in COMMANDS.items():
        fields = ["id", *(k for k, v in request.items() if k not in ("type", "mode") and isinstance(v, str))]
        for name, brk in BREAKS.items():
            for field in fields:
                base = f"{command}-{name}" if field == "id" else request[field]
                cases.append((f"{command}/{field}/{name}", command, field, {**request, field: smuggle(base, brk)}))
                # A value that ends in the break: a pattern's $ must not let a trailing newline through.
                cases.append((f"{command}/{field}/{name}-at-end", command, field, {**request, field: base + brk}))
    for case, request in FINDING_CASES:
        cases.append((case, "queue.pause", "reason" if "reason" in request else "queue", request))
    return cases


@pytest.mark.parametrize("request_", [r for _, _, _, r in hostile_cases()], ids=[c for c, _, _, _ in hostile_cases()])
def test_the_request_models_refuse_every_hostile_value(request_: dict[str, Any]) -> None:
    raw = {"id": "r1", **request_}
    raw = json.loads(json.dumps(raw).replace("{L}", "1795480456.101"))
    with pytest.raises(ValidationError):
        m.CLIENT_ADAPTER.validate_python(raw)


@pytest.mark.parametrize(("field", "value"), [
    ("reason", "обед"), ("reason", "Перерыв на обед (15 мин) — вернусь в 13:15!"), ("reason", ""),
    ("queue", "support-linear"), ("queue", "sales_2.east"), ("id", "r-42 «ответ»"),
])
def test_ordinary_values_still_pass(field: str, value: str) -> None:
    request = {"type": "queue.pause", "id": "1", field: value}
    assert m.CLIENT_ADAPTER.validate_python(request)


@pytest.mark.parametrize("linkedid", ["1795480456.101", "pbx1-1795480456.101", "asterisk.lab-1795480456.7"])
def test_asterisk_linkedids_pass(linkedid: str) -> None:
    assert m.CLIENT_ADAPTER.validate_python({"type": "hangup", "id": "1", "linkedid": linkedid})


@pytest.mark.parametrize("value", ["x\u202e", "a\x1bb", "tab\there", "a\x7fb", "\ufeffx", "a|b"])
def test_a_pause_reason_has_no_control_characters_of_any_kind(value: str) -> None:
    """Bidi overrides, escapes, DEL, BOM; and no '|', which would shift the fields of Asterisk's queue_log."""
    with pytest.raises(ValidationError):
        m.CLIENT_ADAPTER.validate_python({"type": "queue.pause", "id": "1", "reason": value})


@pytest.mark.parametrize("value", ["sup port", "support;x", "support/x", "support\t", "", "x" * 81])
def test_a_queue_name_is_letters_digits_and_dash_underscore_dot(value: str) -> None:
    with pytest.raises(ValidationError):
        m.CLIENT_ADAPTER.validate_python({"type": "queue.unpause", "id": "1", "queue": value})


# -- end to end: replay PBX → daemon → panel → a hostile agent -----------------------------------------------


async def answer_to(env: PanelEnv, client: WsClient, request_id: str, timeout: float = 10) -> dict[str, Any]:
    await env.wait_for(lambda: any(msg["type"] in ("reply", "error") and msg.get("id") == request_id
                                   for _, msg in client.received) or client.closed is not None, timeout)
    assert client.closed is None, f"the socket was closed: {client.closed}"
    return next(msg for _, msg in client.received if msg["type"] in ("reply", "error") and msg.get("id") == request_id)


def stray(env: PanelEnv, since: int) -> list[AmiMessage]:
    """Actions the PBX got since ``since``, without the daemon's own keep-alive pings."""
    return [a.message for a in env.replay.received_actions[since:] if a.message.action != "Ping"]


async def test_no_field_of_any_command_can_smuggle_an_action_or_a_header_to_the_pbx() -> None:
    # hundreds of commands here: the rate limit is another test's
    async with panel_env([TRANSFER], speed=0, http_extra="command_burst = 100000") as env:
        anna = await WsClient.connect(env, "anna")
        await env.serve_through(leg_event("BridgeEnter", "PJSIP/101-"), "101 answering")  # and held there
        linkedid = str((await anna.wait_for("call.answered", timeout=20, answered_by="101"))["linkedid"])
        start = len(env.replay.received_actions)
        ids = itertools.count(1)
        failures: list[str] = []
        for case, command, field, request in hostile_cases():
            raw = {"id": f"h{next(ids)}", **json.loads(json.dumps(request).replace("{L}", linkedid))}
            request_id = raw["id"]
            before = len(env.replay.received_actions)
            await anna.conn.send(json.dumps(raw, ensure_ascii=False))
            answer = await answer_to(env, anna, request_id)
            name, allowed = EXPECTED[command]
            sent = stray(env, before)
            if len(sent) > 1 or any(a.action != name for a in sent):
                failures.append(f"{case}: the PBX got {[a.action for a in sent]}")
            for a in sent:
                extra = {k for k, _ in a.headers} - allowed - {"Action", "ActionID"}
                if extra:
                    failures.append(f"{case}: {a.action} carried headers {sorted(extra)}")
            if answer["type"] != "error" or answer["code"] != "bad_message":
                failures.append(f"{case}: answered {answer['type']} {answer.get('code', '')}")
            elif f"{field}:" not in answer["message"]:
                failures.append(f"{case}: the error does not say which field: {answer['message']!r}")
            pong = await anna.request({"type": "ping"})
            assert pong["type"] == "reply", f"{case}: the socket no longer answers"
        # The daemon writes to the PBX in order: once a good command is answered, every earlier byte was read.
        good = await anna.request({"type": "originate", "number": "89161234567"})
        assert good["type"] == "reply", good
        sent = stray(env, start)
        assert not failures, "\n".join(failures[:40])
        assert [a.action for a in sent] == ["Originate"], [a.headers for a in sent]
        assert all(k != "Application" for a in sent for k, _ in a.headers)


# -- values that do not come from the request: the PBX, the user list --------------------------------------


async def test_a_line_break_the_pbx_put_in_a_member_interface_is_never_written_to_the_pbx() -> None:
    """The member interface of a pause comes from the PBX's own events; our framer keeps a bare LF inside a
    CRLF frame's value, so a hostile one gets as far as ``action()``, which refuses it: ``bad_message``."""
    async with panel_env([TRANSFER]) as env:
        anna = await WsClient.connect(env, "anna")
        await anna.wait_for("state")
        board = env.running.daemon.agents
        env.replay.send_raw(b"Event: QueueMemberStatus\r\nPrivilege: agent,all\r\nQueue: support\r\n"
                            b"MemberName: Anna\r\nInterface: PJSIP/101\nAction: Hangup\nChannel: " +
                            CUSTOMER_CHANNEL.encode() + b"\r\nStateInterface: PJSIP/101\r\nStatus: 1\r\n"
                            b"Paused: 0\r\n\r\n")
        await env.wait_for(lambda: "\n" in board.member_interfaces("101").get("support", ""))
        before = len(env.replay.received_actions)
        for request in ({"type": "queue.pause", "queue": "support", "reason": "break"}, {"type": "queue.pause"},
                        {"type": "queue.unpause", "queue": "support"}):
            refused = await anna.request(request)
            assert refused["type"] == "error" and refused["code"] == "bad_message", refused
            assert "Interface" in refused["message"] and "LF" in refused["message"], refused
            assert "Hangup" not in refused["message"]
        assert (await anna.request({"type": "ping"}))["type"] == "reply"
        assert stray(env, before) == []


async def test_a_display_name_cannot_add_headers_or_change_the_number_of_a_click_to_call() -> None:
    """The CallerID of a click-to-call carries the agent's display name (the user list): quotes, angle
    brackets and line breaks are taken out of it, so it can neither end the header nor name another number."""
    from store.repository import User
    from ui_bridge.auth import hash_password

    async with panel_env([TRANSFER]) as env:
        password = "eve-password-1"
        hostile = f'Eve "x" <999>\r\n\r\nAction: Hangup\r\nChannel: {CUSTOMER_CHANNEL}\u2028'
        await env.store.add_user(User(name="eve", role="agent", extension="107", display_name=hostile,
                                      password_hash=await asyncio.to_thread(hash_password, password)))
        env.users["eve"] = (password, "agent", "107", hostile)
        eve = await WsClient.connect(env, "eve")
        before = len(env.replay.received_actions)
        reply = await eve.request({"type": "originate", "number": "89161234567"})
        assert reply["type"] == "reply", reply
        [sent] = stray(env, before)
        assert sent.action == "Originate" and sent["Channel"] == "PJSIP/107"
        assert sent["CallerID"] == f'"Eve x 999 Action: Hangup Channel: {CUSTOMER_CHANNEL}" <107>'
        assert {k for k, _ in sent.headers} == {"Action", *EXPECTED["originate"][1], "ActionID"}
