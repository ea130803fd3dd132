"""The replay PBX as ``cti demo`` runs it: calls re-dated to now, and call control answered as Asterisk 22 answers it.

Over real loopback TCP with the bare AMI client. The synthesized events are held against the real ones the lab PBX
sent for the same actions (32-queue-paused-member, 13-blind-transfer-redirect, 15-blind-transfer-noanswer): the
same events, each with the same fields in the same order.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage, action
from asterisk.replay import ReplayPbx
from asterisk.replay.queues_conf import parse_queues_conf, read_queues_conf
from tests.asterisk.conftest import TIMEOUT, TRACES, RawAmiClient
from tests.asterisk.test_replay import Headers, recorded

MEMBERS = read_queues_conf(TRACES / "pbx-conf" / "queues.conf")
TRANSFER = TRACES / "13-blind-transfer-redirect"
CUSTOMER, AGENT = "PJSIP/trunk-00000024", "PJSIP/101-00000025"


def keys_of(folder: Path, event: str, **match: str) -> list[str]:
    """The header names of the first recorded ``event`` (with those values) of a trace, as the real PBX sent it."""
    events, _ = recorded(folder)
    for headers in events:
        fields = dict(headers)
        if fields.get("Event") == event and all(fields.get(k) == v for k, v in match.items()):
            return [k for k, _ in headers]
    raise AssertionError(f"no {event} {match} in {folder.name}")


async def drain(client: RawAmiClient, quiet: float = 0.3) -> list[AmiMessage]:
    """Every event that arrives until the line stays quiet for ``quiet`` seconds (bounded by the test timeout)."""
    out: list[AmiMessage] = []
    deadline = time.monotonic() + 4 * TIMEOUT
    while time.monotonic() < deadline:
        try:
            msg = await client.next_message(within=quiet)
        except TimeoutError:
            return out
        if msg.event and msg.event not in ("FullyBooted", "SuccessfulAuth"):  # this session's own login events
            out.append(msg)
    raise AssertionError("the PBX never went quiet")


def until(events: list[Headers], predicate: dict[str, str]) -> int:
    """How many recorded events there are up to and including the first that has ``predicate``'s values."""
    return next(i for i, h in enumerate(events) if all(dict(h).get(k) == v for k, v in predicate.items())) + 1


# -- queues.conf -----------------------------------------------------------------------------------------------


def test_the_lab_queues_conf_gives_every_static_member() -> None:
    by_queue = {(m.queue, m.interface): m for m in MEMBERS}
    assert set(by_queue) == {(q, f"PJSIP/{e}") for q in ("support", "support-linear", "support-rr")
                             for e in ("101", "102", "105")} | {("sales", "Local/104@agents")}
    sales = by_queue[("sales", "Local/104@agents")]
    assert (sales.name, sales.device) == ("Дмитрий Соколов", "PJSIP/104")
    assert parse_queues_conf("[tpl](!)\nmember => PJSIP/1\n[general]\nmember => PJSIP/2\n") == []


# -- re-dating ----------------------------------------------------------------------------------------------------


async def test_redate_moves_a_trace_to_now_keeping_its_durations_and_ids_in_step(replay_pbx, ami_client) -> None:
    folder = TRACES / "01-direct-answered"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0, redate=True)
    client = await ami_client(pbx)
    before = time.time()
    await client.login()
    got = await client.events(len(expected))
    assert [m.event for m in got] == [dict(h)["Event"] for h in expected]
    stamps = [(m.time, float(dict(h)["Timestamp"])) for m, h in zip(got, expected, strict=True) if "Timestamp" in m]
    assert before - 1 <= stamps[0][0] <= time.time() + 3, "the call happens now (its first event a moment in)"
    shifts = {round(new - old, 3) for new, old in stamps}  # epoch floats: microseconds are at their last digit
    assert len(shifts) == 1 and float(shifts.pop()).is_integer(), "one whole-second shift: durations kept"
    shift = int(stamps[0][0] - stamps[0][1] + 0.5)
    for m, h in zip(got, expected, strict=True):
        old = dict(h)
        if "Linkedid" in old:
            epoch, seq = old["Linkedid"].split(".")
            assert m["Linkedid"] == f"{int(epoch) + shift}.{seq}", "the id is the channel's creation second"
        assert [k for k, _ in m.headers] == [k for k, _ in h], "nothing else changes"


async def test_redated_loop_passes_go_forward_and_never_repeat_an_id(replay_pbx, ami_client) -> None:
    folder = TRACES / "05-caller-hangup-ringing"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0, redate=True, loop=True)
    client = await ami_client(pbx)
    await client.login()
    one, two = await client.events(len(expected)), await client.events(len(expected))
    assert min(m.time for m in two if "Timestamp" in m) > max(m.time for m in one if "Timestamp" in m)
    assert not {m["Uniqueid"] for m in one if "Uniqueid" in m} & {m["Uniqueid"] for m in two if "Uniqueid" in m}


async def test_without_redate_or_live_the_trace_is_served_verbatim(replay_pbx, ami_client) -> None:
    expected, _ = recorded(TRANSFER)
    pbx = await replay_pbx([TRANSFER], speed=0)
    client = await ami_client(pbx)
    await client.login()
    assert [m.headers for m in await client.events(len(expected))] == expected


def test_redate_and_rebase_time_are_two_answers_to_one_question() -> None:
    with pytest.raises(ValueError, match="choose one"):
        ReplayPbx([TRANSFER], redate=True, rebase_time=True)


# -- QueuePause ---------------------------------------------------------------------------------------------------


async def test_queue_pause_is_answered_with_the_member_events_asterisk_sends(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "01-direct-answered"], speed=0, live=True, queue_members=MEMBERS)
    pbx.pause()
    client = await ami_client(pbx)
    await client.login()
    response, _ = await client.request(action("QueuePause", Queue="support", Interface="PJSIP/101", Paused="true",
                                              Reason="обед"))
    assert (response.response, response["Message"]) == ("Success", "Interface paused successfully")
    device, pause = await client.events(2)
    assert (device.event, device["Device"], device["State"]) == ("DeviceStateChange",
                                                                 "Queue:support_pause_PJSIP/101", "INUSE")
    assert [k for k, _ in pause.headers] == keys_of(TRACES / "32-queue-paused-member", "QueueMemberPause")
    assert (pause["Queue"], pause["MemberName"], pause["Interface"], pause["Paused"], pause["PausedReason"]) == (
        "support", "Анна Смирнова", "PJSIP/101", "1", "обед")
    assert abs(int(pause["LastPause"]) - pbx.pbx_time()) <= 2

    _, items = await client.request(action("QueueStatus", Queue="support"))
    member = next(m for m in items if m.event == "QueueMember" and m["Location"] == "PJSIP/101")
    assert (member["Paused"], member["PausedReason"]) == ("1", "обед"), "the PBX's state follows"

    # Without a queue: every queue the interface is a member of, as app_queue does.
    response, _ = await client.request(action("QueuePause", Interface="PJSIP/101", Paused="false"))
    assert response["Message"] == "Interface unpaused successfully"
    unpaused = [m for m in await drain(client) if m.event == "QueueMemberPause"]
    assert sorted(m["Queue"] for m in unpaused) == ["support", "support-linear", "support-rr"]
    assert {(m["Paused"], m["PausedReason"]) for m in unpaused} == {("0", "")}

    refused, _ = await client.request(action("QueuePause", Interface="PJSIP/999", Paused="true"))
    assert (refused.response, refused["Message"]) == ("Error", "Interface not found")
    assert await drain(client) == [], "nothing happens to a member that does not exist"


async def test_queue_pause_is_only_recorded_without_live(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "01-direct-answered"], speed=0)
    pbx.pause()
    client = await ami_client(pbx)
    await client.login()
    response, _ = await client.request(action("QueuePause", Interface="PJSIP/101", Paused="true"))
    assert response["Message"] == "Interface paused successfully"
    assert await drain(client) == []


# -- transfers ----------------------------------------------------------------------------------------------------


async def answered_transfer_call(replay_pbx, ami_client) -> tuple[ReplayPbx, RawAmiClient, list[Headers]]:
    """Trace 13 served up to agent 101's answer (both parties bridged), then held."""
    expected, _ = recorded(TRANSFER)
    pbx = await replay_pbx([TRANSFER], speed=0, live=True, queue_members=MEMBERS)
    pbx.pause()
    client = await ami_client(pbx)
    await client.login()
    served = pbx.advance(until(expected, {"Event": "BridgeEnter", "Channel": CUSTOMER}))  # whole recorded reads
    await client.events(served)
    return pbx, client, expected[served:]


async def test_a_redirect_of_a_replayed_call_rings_the_target_on_the_same_linkedid(replay_pbx, ami_client) -> None:
    pbx, client, rest = await answered_transfer_call(replay_pbx, ami_client)
    linkedid = dict(rest[0])["Linkedid"]
    response, _ = await client.request(action("Redirect", Channel=CUSTOMER, Context="transfer", Exten="105",
                                              Priority="1"))
    assert (response.response, response["Message"]) == ("Success", "Redirect successful")
    events = await drain(client)
    names = [m.event for m in events]
    assert names == ["Newexten", "BridgeLeave", "BridgeLeave", "BridgeDestroy", "Hangup",  # 101 is let go
                     "Newchannel", "Newexten", "NewConnectedLine", "DialBegin", "NewConnectedLine", "Newstate",
                     "DialState",  # 105 rings
                     "Newstate", "DialEnd", "BridgeCreate", "Newexten", "BridgeEnter", "BridgeEnter"]  # and answers
    hangup = events[4]
    assert (hangup["Channel"], hangup["Cause"]) == (AGENT, "16")
    new = events[5]
    assert new["Channel"].startswith("PJSIP/105-") and new["Linkedid"] == linkedid
    assert new["CallerIDName"] == "Елена Попова", "the name the phone presents, learnt from the queue config"
    dial = events[8]
    assert (dial["Channel"], dial["DestChannel"], dial["DialString"], dial["Context"], dial["Exten"]) == (
        CUSTOMER, new["Channel"], "105", "transfer", "105")
    assert (events[13]["DialStatus"], events[-1]["Channel"]) == ("ANSWER", CUSTOMER)
    assert all(m.time >= events[0].time for m in events) and all(m["Linkedid"] == linkedid for m in events
                                                                 if "Linkedid" in m)
    for m in events:  # each synthesized event has the fields the real PBX gave that event
        if m.event in ("Newchannel", "DialBegin", "DialState", "DialEnd", "BridgeLeave", "BridgeEnter", "Hangup",
                       "NewConnectedLine", "Newstate", "BridgeCreate", "BridgeDestroy"):
            assert [k for k, _ in m.headers] == keys_of(TRANSFER, m.event), m.event

    # The trace goes on: nothing more of 101 or the call's recorded legs, and the customer's own hang-up ends the
    # new leg first.
    pbx.resume()
    after = await drain(client)
    assert AGENT not in {m.get("Channel") for m in after}
    assert "PJSIP/104-00000026" not in {m.get("Channel") for m in after}, "the recording's own transfer is gone"
    hangups = [m["Channel"] for m in after if m.event == "Hangup"]
    assert hangups == [new["Channel"], CUSTOMER]


async def test_a_blind_transfer_to_an_outside_number_dials_the_trunk(replay_pbx, ami_client) -> None:
    _pbx, client, _ = await answered_transfer_call(replay_pbx, ami_client)
    response, _ = await client.request(action("BlindTransfer", Channel=AGENT, Context="outbound",
                                              Exten="89161230035"))
    assert (response.response, response["Message"]) == ("Success", "Transfer succeeded")
    events = await drain(client)
    blind = events[0]
    assert blind.event == "BlindTransfer"
    assert [k for k, _ in blind.headers] == keys_of(TRACES / "15-blind-transfer-noanswer", "BlindTransfer")
    assert (blind["TransfererChannel"], blind["TransfereeChannel"], blind["Extension"]) == (
        AGENT, CUSTOMER, "89161230035")
    new = next(m for m in events if m.event == "Newchannel")
    dial = next(m for m in events if m.event == "DialBegin")
    assert new["Channel"].startswith("PJSIP/trunk-") and dial["DialString"] == "89161230035@trunk"
    assert [k for k, _ in dial.headers] == keys_of(TRACES / "35-blind-transfer-external", "DialBegin")


async def test_an_atxfer_ends_with_the_attended_transfer_to_the_target(replay_pbx, ami_client) -> None:
    _pbx, client, _ = await answered_transfer_call(replay_pbx, ami_client)
    response, _ = await client.request(action("Atxfer", Channel=AGENT, Context="transfer", Exten="102"))
    assert response.response == "Success"
    events = await drain(client)
    dial = next(m for m in events if m.event == "DialBegin")
    assert dial["Channel"] == AGENT and dial["DestChannel"].startswith("PJSIP/102-"), "the agent consults"
    done = next(m for m in events if m.event == "AttendedTransfer")
    assert (done["TransfereeChannel"], done["TransferTargetChannel"]) == (CUSTOMER, dial["DestChannel"])
    assert [m["Channel"] for m in events if m.event == "Hangup"] == [AGENT]
    assert [m["Channel"] for m in events if m.event == "BridgeEnter"] == [dial["DestChannel"], CUSTOMER]


async def test_a_transfer_of_a_channel_that_is_not_up_is_refused(replay_pbx, ami_client) -> None:
    _pbx, client, _ = await answered_transfer_call(replay_pbx, ami_client)
    refused, _ = await client.request(action("Redirect", Channel="PJSIP/trunk-deadbeef", Context="transfer",
                                             Exten="104"))
    assert (refused.response, refused["Message"]) == ("Error", "Channel specified does not exist")
    assert await drain(client) == []
