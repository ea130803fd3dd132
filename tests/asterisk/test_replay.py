"""The replay PBX, checked over real loopback TCP with a bare AMI client.

What a client must see is read straight from each trace's ``ami.jsonl`` here, independently of
``asterisk/replay/``: every recorded ``Event`` frame except the recording session's own
(``FullyBooted``, ``SuccessfulAuth``) and the list items answering the recording runner's actions.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage, action
from asterisk.replay import PbxState, load_trace
from tests.conftest import UNIT  # the suite's one time unit (CTI_TEST_TIME_UNIT)

Headers = list[tuple[str, str]]
TRACES = Path(os.environ.get("CTI_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "ami-traces"
TIMEOUT = 5.0 * UNIT


def recorded(folder: Path) -> tuple[list[Headers], list[Headers]]:
    """(the events a client must receive, the resync items the runner got at connect) of a trace."""
    runner_ids: set[str] = set()
    events: list[Headers] = []
    answers: list[Headers] = []
    with (folder / "ami.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            if "sent" in item:
                runner_ids.update(v for k, v in item["sent"] if k == "ActionID")
                continue
            if isinstance(item["msg"], str):
                continue
            headers = [(k, v) for k, v in item["msg"]]
            fields = dict(headers)
            name = fields.get("Event")
            if name is None or name in ("FullyBooted", "SuccessfulAuth"):
                continue
            if fields.get("ActionID") in runner_ids and name != "OriginateResponse":
                answers.append(headers)
            else:
                events.append(headers)
    return events, answers


def live_channels(events: list[Headers], snapshot: list[Headers]) -> dict[str, str]:
    """Uniqueid -> channel name of the channels up after ``events`` (plus those up at connect)."""
    live = {dict(h)["Uniqueid"]: dict(h)["Channel"] for h in snapshot if dict(h)["Event"] == "CoreShowChannel"}
    for headers in events:
        fields = dict(headers)
        if fields["Event"] == "Newchannel":
            live[fields["Uniqueid"]] = fields["Channel"]
        elif fields["Event"] == "Hangup":
            live.pop(fields["Uniqueid"], None)
    return live


SNAPSHOT = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
            "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid", "Linkedid")


def channel_now(events: list[Headers], uniqueid: str) -> dict[str, str]:
    """What ``CoreShowChannel`` must say of a channel after ``events``: its latest snapshot, bridge and
    dialplan application, as the events carry them."""
    now: dict[str, str] = {"BridgeId": ""}
    for headers in events:
        fields = dict(headers)
        if fields.get("Uniqueid") != uniqueid:
            continue
        now.update({k: fields[k] for k in SNAPSHOT})
        if fields["Event"] == "Newchannel":
            now["created"] = fields["Timestamp"]
        elif fields["Event"] == "Newexten":
            now["Application"] = fields["Application"]
        elif fields["Event"] == "BridgeEnter":
            now["BridgeId"] = fields["BridgeUniqueid"]
        elif fields["Event"] == "BridgeLeave":
            now["BridgeId"] = ""
    return now


def without_action_id(headers: Headers) -> Headers:
    return [(k, v) for k, v in headers if k != "ActionID"]


async def test_banner_then_login_accepted_then_fully_booted(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "01-direct-answered"], speed=0)
    client = await ami_client(pbx)
    assert await client.read_banner() == "Asterisk Call Manager/11.0.0"
    response = await client.login()
    assert (response.response, response.get("Message")) == ("Success", "Authentication accepted")
    assert (await client.next_message()).event == "FullyBooted"


async def test_wrong_secret_is_refused_and_the_connection_closed(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "01-direct-answered"], speed=0)
    client = await ami_client(pbx)
    response = await client.login(secret="wrong")
    assert (response.response, response.get("Message")) == ("Error", "Authentication failed")
    await client.wait_closed()
    assert pbx.served_count == 0, "a refused client must not start the stream"


async def test_served_events_are_the_recorded_events(trace_folder: Path, replay_pbx, ami_client) -> None:
    expected, _ = recorded(trace_folder)
    pbx = await replay_pbx([trace_folder], speed=0)
    client = await ami_client(pbx)
    await client.login()
    got = await client.events(len(expected))
    assert [m.headers for m in got] == expected
    await asyncio.wait_for(pbx.finished.wait(), TIMEOUT)
    # Nothing after the last event: the next frame is the answer to a Ping, and the PBX stays up.
    await client.send(action("Ping", ActionID="after-the-end"))
    assert (await client.next_message()).action_id == "after-the-end"


async def test_events_off_gives_no_event_at_all(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "01-direct-answered"], speed=0)
    client = await ami_client(pbx)
    await client.login(events="off")
    await asyncio.sleep(0.3 * UNIT)
    assert pbx.position == 0, "a client with events off is not listening: the stream waits for one that is"
    await client.send(action("Ping", ActionID="p"))
    first = await client.next_message()
    assert (first.response, first.action_id) == ("Success", "p")
    # The daemon's way in: log in with events off, add filters, then switch events on.
    await client.send(action("Filter", Operation="Add", Filter="Event: Hangup\\r", ActionID="f"))
    assert (await client.next_message()).action_id == "f"
    await client.send(action("Events", EventMask="call", ActionID="e"))
    assert (await client.next_message()).get("Events") == "On"
    got = await client.events(2)
    assert [m.event for m in got] == ["Hangup", "Hangup"]


async def test_events_call_gives_call_class_only(replay_pbx, ami_client) -> None:
    folder = TRACES / "07-queue-ringall-answered"
    expected = [h for h in recorded(folder)[0] if dict(h).get("Privilege", "").split(",")[0] == "call"]
    assert len(expected) > 20
    pbx = await replay_pbx([folder], speed=0)
    client = await ami_client(pbx)
    await client.login(events="call")
    got = await client.events(len(expected))
    assert [m.headers for m in got] == expected
    await asyncio.wait_for(pbx.finished.wait(), TIMEOUT)
    await client.send(action("Ping", ActionID="p"))
    assert (await client.next_message()).action_id == "p", "no dialplan/agent/reporting event may follow"


async def test_filter_include_and_exclude(replay_pbx, ami_client) -> None:
    folder = TRACES / "01-direct-answered"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0)
    pbx.pause()
    including, excluding = await ami_client(pbx), await ami_client(pbx)
    for client, rule in ((including, "Event: Newchannel"), (excluding, "!Event: VarSet")):
        await client.login()
        response, _ = await client.request(action("Filter", Operation="Add", Filter=rule))
        assert response.response == "Success"
    pbx.resume()

    newchannels = [h for h in expected if dict(h)["Event"] == "Newchannel"]
    not_varset = [h for h in expected if dict(h)["Event"] != "VarSet"]
    assert [m.headers for m in await including.events(len(newchannels))] == newchannels
    assert [m.headers for m in await excluding.events(len(not_varset))] == not_varset
    await asyncio.wait_for(pbx.finished.wait(), TIMEOUT)
    for client in (including, excluding):
        await client.send(action("Ping", ActionID="end"))
        assert (await client.next_message()).action_id == "end"


async def test_ping_is_answered_until_the_pbx_goes_silent(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "10-queue-timeout-voicemail"], speed=1.0)
    client = await ami_client(pbx)
    await client.login()
    pong, _ = await client.request(action("Ping"))
    assert (pong.response, pong.get("Ping")) == ("Success", "Pong")
    first_stamp = float(dict(recorded(TRACES / "10-queue-timeout-voicemail")[0][0])["Timestamp"])
    assert abs(float(pong["Timestamp"]) - first_stamp) < 60, "Timestamp is on the PBX's (recorded) clock"

    pbx.stop_answering_pings(True)
    served = pbx.served_count
    with pytest.raises(TimeoutError):
        await client.request(action("Ping"), within=1.5 * UNIT)
    assert pbx.served_count == served, "a silent PBX sends no event either"
    assert not client.reader.at_eof(), "the socket stays open"

    pbx.stop_answering_pings(False)
    pong, _ = await client.request(action("Ping"))
    assert pong.get("Ping") == "Pong"


async def test_a_client_that_drops_loses_the_outage_and_resyncs_to_the_state_at_its_return(replay_pbx,
                                                                                          ami_client) -> None:
    """As Asterisk: the stream goes on while nobody is connected, the events of the outage are never delivered,
    and ``CoreShowChannels`` at the reconnect shows the state at that moment (a channel that hung up meanwhile is
    not listed; state, connected line, bridge, application and ``Duration`` are those of now)."""
    folder = TRACES / "07-queue-ringall-answered"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0)
    first = await ami_client(pbx)
    await first.login()
    got = await first.events(60)  # 101, 102 and 105 are ringing by then
    pbx.pause()
    got += await first.events(pbx.served_count - len(got))

    pbx.drop_connections()
    await first.wait_closed()
    gone = pbx.position
    lost = pbx.advance(40)  # 102 answers, 101 and 105 hang up, the caller and 102 are bridged: nobody listens
    position = pbx.position
    assert lost >= 40 and position == gone + lost < len(expected)

    second = await ami_client(pbx)
    await second.login()
    response, items = await second.request(action("CoreShowChannels"))
    assert response.get("EventList") == "start"
    channels = [m for m in items if m.event == "CoreShowChannel"]
    live = live_channels(expected[:position], [])
    hung_up_meanwhile = set(live_channels(expected[:gone], [])) - set(live)
    assert hung_up_meanwhile, "the outage must end some channel, or this test shows nothing"
    assert {m["Uniqueid"]: m["Channel"] for m in channels} == live
    assert any(m["BridgeId"] for m in channels)
    last_stamp = max(float(dict(h)["Timestamp"]) for h in expected[:position] if "Timestamp" in dict(h))
    for item in channels:
        want = channel_now(expected[:position], item["Uniqueid"])
        assert {k: item[k] for k in (*SNAPSHOT, "BridgeId")} == {k: want[k] for k in (*SNAPSHOT, "BridgeId")}
        if "Application" in want:
            assert item["Application"] == want["Application"]
        hours, minutes, seconds = (int(x) for x in item["Duration"].split(":"))
        assert abs(hours * 3600 + minutes * 60 + seconds - (last_stamp - float(want["created"]))) <= 1.0
    assert items[-1].event == "CoreShowChannelsComplete" and items[-1]["ListItems"] == str(len(live))

    pbx.resume()
    after = await second.events(len(expected) - position)
    assert [m.headers for m in got + after] == expected[:gone] + expected[position:], "the outage is lost, only it"


async def test_the_stream_goes_on_while_no_client_is_connected(replay_pbx, ami_client) -> None:
    """At full speed with nobody connected, the rest of the trace happens at once: a late client gets none of it."""
    folder = TRACES / "16-click-to-call-answered"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0)
    first = await ami_client(pbx)
    await first.login()
    await first.events(10)
    pbx.drop_connections()
    await asyncio.wait_for(pbx.finished.wait(), TIMEOUT)
    assert pbx.position == len(expected)

    second = await ami_client(pbx)
    await second.login()
    _, items = await second.request(action("CoreShowChannels"))
    assert [m.event for m in items] == ["CoreShowChannelsComplete"], "every call ended while nobody listened"
    await second.send(action("Ping", ActionID="p"))
    before_pong = []
    while (msg := await second.next_message()).action_id != "p":
        before_pong.append(msg.event)
    assert set(before_pong) <= {"FullyBooted", "SuccessfulAuth"}, "nothing of the outage is replayed"


async def test_pause_when_no_client_holds_the_stream_for_a_test_that_asks(replay_pbx, ami_client) -> None:
    """The explicit option (never the default): the stream waits for the next login and loses nothing."""
    folder = TRACES / "16-click-to-call-answered"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0, pause_when_no_client=True)
    first = await ami_client(pbx)
    await first.login()
    await first.events(10)
    pbx.drop_connections()
    position = pbx.position
    await asyncio.sleep(0.2 * UNIT)
    assert pbx.position == position

    second = await ami_client(pbx)
    await second.login()
    assert [m.headers for m in await second.events(len(expected) - position)] == expected[position:]


@pytest.mark.parametrize("folder", sorted(p for p in TRACES.iterdir() if (p / "ami.jsonl").is_file()),
                         ids=lambda p: p.name)
def test_the_snapshot_never_lists_a_channel_that_hung_up(folder: Path) -> None:
    """At every position of every trace, the channels ``CoreShowChannels`` lists are exactly those up then."""
    trace = load_trace(folder)
    expected, answers = recorded(folder)
    state = PbxState()
    state.seed(trace.snapshot, lambda ago: trace.epoch0 - ago)
    for position, event in enumerate(trace.events, 1):
        state.apply(event.message, event.message.time or trace.epoch0)
        listed = {m["Uniqueid"]: m["Channel"] for m in state.core_show_channels(event.message.time, [])}
        assert listed == live_channels(expected[:position], answers), f"after event {position}"


async def test_resync_at_connect_returns_the_recorded_snapshot(replay_pbx, ami_client) -> None:
    """Trace 25 was recorded with calls up: at connect the PBX answers what the runner was answered."""
    folder = TRACES / "25-resync-midcall"
    _, answers = recorded(folder)
    recorded_channels = [without_action_id(h) for h in answers if dict(h)["Event"] == "CoreShowChannel"]
    recorded_queues = [without_action_id(h) for h in answers if dict(h)["Event"] in
                       ("QueueParams", "QueueMember", "QueueEntry")]
    assert len(recorded_channels) == 7
    pbx = await replay_pbx([folder], speed=0)
    pbx.pause()
    client = await ami_client(pbx)
    await client.login()

    response, items = await client.request(action("CoreShowChannels", ActionID="csc-1"))
    assert (response.response, response.get("Message")) == ("Success", "Channels will follow")
    assert all(m.action_id == "csc-1" for m in items)
    assert [without_action_id(m.headers) for m in items[:-1]] == recorded_channels
    assert items[-1].headers == [("Event", "CoreShowChannelsComplete"), ("ActionID", "csc-1"),
                                 ("EventList", "Complete"), ("ListItems", "7")]

    _, items = await client.request(action("QueueStatus"))
    assert [without_action_id(m.headers) for m in items[:-1]] == recorded_queues
    assert items[-1]["ListItems"] == str(len(recorded_queues))


async def test_queue_status_follows_member_pause(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "32-queue-paused-member"], speed=0)
    client = await ami_client(pbx)
    await client.login()
    while True:
        event = (await client.events(1))[0]
        if event.event == "QueueMemberPause" and event["Paused"] == "1":
            break
    pbx.pause()
    _, items = await client.request(action("QueueStatus", Queue="support"))
    member = next(m for m in items if m.event == "QueueMember" and m["Location"] == "PJSIP/101")
    assert (member["Paused"], member["PausedReason"]) == ("1", "break")
    assert {m["Queue"] for m in items if "Queue" in m} == {"support"}


async def test_actions_are_recorded_not_executed(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "13-blind-transfer-redirect"], speed=0)
    pbx.pause()
    client = await ami_client(pbx)
    await client.login()
    redirect = action("Redirect", Channel="PJSIP/trunk-00000024", Context="transfer", Exten="104", Priority="1")
    response, _ = await client.request(redirect)
    assert (response.response, response.get("Message")) == ("Success", "Redirect successful")
    sent = [a for a in pbx.received_actions if a.message.action == "Redirect"]
    assert len(sent) == 1 and sent[0].message["Channel"] == "PJSIP/trunk-00000024"
    assert sent[0].session == pbx.received_actions[0].session, "same session as the login"
    assert pbx.served_count == 0

    unknown, _ = await client.request(action("NoSuchThing"))
    assert unknown.response == "Error" and unknown["Message"].startswith("Invalid/unknown command: NoSuchThing")


async def test_getvar_answers_from_varset_events_while_the_channel_is_up(replay_pbx, ami_client) -> None:
    folder = TRACES / "01-direct-answered"
    expected, _ = recorded(folder)
    recording = next(dict(h) for h in expected if ("Variable", "MIXMONITOR_FILENAME") in h)
    hangup = next(i for i, h in enumerate(expected) if ("Event", "Hangup") in h and
                  dict(h)["Channel"] == recording["Channel"])
    pbx = await replay_pbx([folder], speed=0)
    client = await ami_client(pbx)
    await client.login()
    await client.events(hangup - 1)
    pbx.pause()
    getvar = action("Getvar", Channel=recording["Channel"], Variable="MIXMONITOR_FILENAME")
    response, _ = await client.request(getvar)
    assert response["Value"] == recording["Value"]
    pbx.resume()
    await client.events(len(expected) - hangup + 1)
    gone, _ = await client.request(getvar)
    assert (gone.response, gone["Message"]) == ("Error", "No such channel"), "its variables ended with it"


async def test_loop_gives_new_ids_on_every_pass(replay_pbx, ami_client) -> None:
    folder = TRACES / "01-direct-answered"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0, loop=True)
    client = await ami_client(pbx)
    await client.login()
    one = await client.events(len(expected))
    two = await client.events(len(expected))
    assert [m.headers for m in one] == expected
    assert [m.event for m in two] == [m.event for m in one]
    first_ids = {m["Linkedid"] for m in one if "Linkedid" in m}
    second_ids = {m["Linkedid"] for m in two if "Linkedid" in m}
    assert first_ids and not first_ids & second_ids
    assert {i.split(".")[1] for i in first_ids} == {i.split(".")[1] for i in second_ids}
    assert min(m.time for m in two if "Timestamp" in m) > max(m.time for m in one if "Timestamp" in m)
    assert not {m["Uniqueid"] for m in one if "Uniqueid" in m} & {m["Uniqueid"] for m in two if "Uniqueid" in m}


async def test_rebased_timestamps_follow_the_wall_clock(replay_pbx, ami_client) -> None:
    folder = TRACES / "05-caller-hangup-ringing"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0, rebase_time=True)
    client = await ami_client(pbx)
    before = time.time()
    await client.login()
    got = [m for m in await client.events(len(expected)) if "Timestamp" in m]
    want = [float(dict(h)["Timestamp"]) for h in expected if "Timestamp" in dict(h)]
    assert before - 1 <= got[0].time <= time.time() + 2
    spans = [b.time - got[0].time for b in got]
    assert spans == pytest.approx([w - want[0] for w in want], abs=0.01), "recorded spacing kept"


@pytest.mark.parametrize("chunking", [{"chunk_size": 1}, {"chunk_size": 7, "chunk_seed": 3}],
                         ids=["1-byte", "random-1..7"])
async def test_chunked_writes_give_identical_messages(chunking, replay_pbx, ami_client) -> None:
    folder = TRACES / "23-cyrillic-anonymous"
    expected, _ = recorded(folder)
    pbx = await replay_pbx([folder], speed=0, **chunking)
    client = await ami_client(pbx)
    assert (await client.login()).response == "Success"
    got = await client.events(len(expected), within=3 * TIMEOUT)
    assert [m.headers for m in got] == expected
    assert any(not m.get("CallerIDName", "").isascii() for m in got), "Cyrillic names went through"
    assert client.frame_errors == []


async def test_injected_garbage_reaches_the_client(replay_pbx, ami_client) -> None:
    pbx = await replay_pbx([TRACES / "01-direct-answered"], speed=0)
    pbx.pause()
    client = await ami_client(pbx)
    await client.login()
    await client.next_message()  # FullyBooted
    await client.next_message()  # SuccessfulAuth
    pbx.send_raw(b"no header here\r\n\r\nEvent: Custom\r\nX: 1\r\n\r\n")
    msg: AmiMessage = await client.next_message()
    assert msg.headers == [("Event", "Custom"), ("X", "1")]
    assert len(client.frame_errors) == 1
