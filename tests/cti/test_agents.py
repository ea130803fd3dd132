"""The pure agent board against every recorded trace and a few inline fixtures: no socket, no loop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage
from cti.agents import AGENT_HANDLERS, AgentBoard
from cti.channels import channel_agent, endpoint_agent
from cti.effects import AgentStateChanged
from cti.model import AMI_FILTERS, ModelConfig
from tests.traces import load_messages, load_sent, load_truth, trace_dirs

AT_REST = {"idle", "paused", "offline"}


def trace(prefix: str) -> Path:
    return next(p for p in trace_dirs() if p.name.startswith(prefix))


def replay(messages: list[AmiMessage], board: AgentBoard | None = None) -> tuple[AgentBoard, list[AgentStateChanged]]:
    board = board or AgentBoard(ModelConfig())
    effects = [e for msg in messages for e in board.apply(msg)]
    return board, effects


def ev(event: str, **headers: str) -> AmiMessage:
    return AmiMessage.from_pairs({"Event": event, **headers})


def visible(e: AgentStateChanged) -> tuple[object, ...]:
    return (e.name, e.state, e.paused, e.paused_reason, e.paused_queues, e.queues)


def agents_in_trace(messages: list[AmiMessage]) -> set[str]:
    """Agent extensions the trace tells something about: device states, queue members, phones that rang."""
    config = ModelConfig()
    seen: set[str] = set()
    for m in messages:
        ext = None
        if m.event == "DeviceStateChange":
            ext = endpoint_agent(m.get("Device"), config)
        elif m.event.startswith("QueueMember"):
            ext = endpoint_agent(m.get("StateInterface"), config)
        elif m.event in ("Newstate", "CoreShowChannel") and m.get("ChannelStateDesc") != "Down":
            ext = channel_agent(m.get("Channel"), config)
        if ext is not None:
            seen.add(ext)
    return seen


# -- every trace ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", trace_dirs(), ids=lambda p: p.name)
def test_every_agent_ends_at_rest_and_effects_are_changes_only(path: Path) -> None:
    """All channels are gone at the end of each trace: no agent is left ringing or in a call. Each effect
    changes what a user sees, and the board's view of an agent is its last effect."""
    messages = load_messages(path)
    board, effects = replay(messages)
    seen = agents_in_trace(messages)
    assert {a.extension for a in board.agents()} == seen
    assert {a.extension: a.state for a in board.agents() if a.state not in AT_REST} == {}
    last: dict[str, AgentStateChanged] = {}
    for e in effects:
        assert e.extension not in last or visible(last[e.extension]) != visible(e), e
        last[e.extension] = e
    for a in board.agents():
        assert visible(a) == visible(last[a.extension])
        assert a.at == last[a.extension].at
    assert [a.extension for a in board.agents()] == sorted(seen)


@pytest.mark.parametrize("path", trace_dirs(), ids=lambda p: p.name)
def test_the_agent_who_answered_was_in_call(path: Path) -> None:
    """Every agent truth.json says answered a call shows ``in_call`` at some point of the trace."""
    _, effects = replay(load_messages(path))
    in_call = {e.extension for e in effects if e.state == "in_call"}
    answered = {c["answered_by"] for c in load_truth(path) if c["direction"] != "outbound" and c["answered_by"]}
    assert answered <= in_call


def test_direct_call_rings_then_is_in_call_then_idle() -> None:
    """01-direct-answered: 103 rings ~3 s, answers, the customer hangs up. The device state says BUSY
    from the first ring on (device_state_busy_at=1): the channel tells ringing from talking."""
    path = trace("01-")
    assert load_truth(path)[0]["answered_by"] == "103"
    _, effects = replay(load_messages(path))
    states = [e for e in effects if e.extension == "103"]
    assert [e.state for e in states] == ["ringing", "in_call", "idle"]
    ringing, talking, _ = states
    assert 2.5 < talking.at - ringing.at < 3.5
    assert not any(e.paused for e in states)


def test_queue_ringall_losers_ring_then_go_idle() -> None:
    """07: 101, 102, 105 ring; 102 answers; 101 and 105 go back to idle when cancelled."""
    _, effects = replay(load_messages(trace("07-")))
    states: dict[str, list[str]] = {}
    for e in effects:  # the runs of states (an effect may change only the queue set)
        runs = states.setdefault(e.extension, [])
        if not runs or runs[-1] != e.state:
            runs.append(e.state)
    assert states == {"101": ["ringing", "idle"], "102": ["ringing", "in_call", "idle"], "105": ["ringing", "idle"]}


def test_queue_pause_with_reason_and_unpause() -> None:
    """32-queue-paused-member: QueuePause 101 in support (reason 'break'), then the unpause after the call."""
    path = trace("32-")
    (pause_t, pause), (unpause_t, unpause) = [(t, a) for t, a in load_sent(path) if a.action == "QueuePause"]
    assert (pause["Paused"], unpause["Paused"]) == ("true", "false")
    _, effects = replay(load_messages(path))
    mine = [e for e in effects if e.extension == "101"]
    assert [(e.state, e.paused, e.paused_reason, e.paused_queues) for e in mine] == [
        ("paused", True, "break", ("support",)), ("idle", False, None, ())]
    assert mine[0].name == "Анна Смирнова"
    messages = load_messages(path)
    t_of = {m.time: m.received_at for m in messages}
    assert pause_t < t_of[mine[0].at] < unpause_t < t_of[mine[1].at]
    # while 101 was paused, the queue call rang only 102 and 105
    assert {e.extension for e in effects if e.state == "ringing"} == {"102", "105"}


def test_two_members_paused_busy_elsewhere() -> None:
    """36-queue-member-unavailable: 102 and 105 paused with reason 'busy-elsewhere'; 101's phone answers 503,
    so it never rings, and Asterisk never reports a device state for it."""
    messages = load_messages(trace("36-"))
    board = AgentBoard(ModelConfig())
    both_paused = False
    for msg in messages:
        board.apply(msg)
        views = [board.get(x) for x in ("102", "105")]
        if all(v is not None and v.state == "paused" and v.paused_reason == "busy-elsewhere" for v in views):
            both_paused = True
    assert both_paused
    assert board.get("101") is None
    assert [(a.extension, a.state, a.paused) for a in board.agents()] == [
        ("102", "idle", False), ("105", "idle", False)]


# -- resync ---------------------------------------------------------------------------------------


def test_resync_items_are_idempotent() -> None:
    """25-resync-midcall: the QueueStatus answer applied twice (or each item twice) changes nothing."""
    messages = load_messages(trace("25-"))
    end = next(i for i, m in enumerate(messages) if m.event == "QueueStatusComplete")
    listing = [m for m in messages[: end + 1] if m.action_id == messages[end].action_id and m.event]
    assert sum(m.event == "QueueMember" for m in listing) == 7
    board, _ = replay(messages[: end + 1])
    before = board.agents()
    assert replay(listing, board)[1] == []
    assert board.agents() == before

    doubled = AgentBoard(ModelConfig())
    for msg in messages[: end + 1]:
        doubled.apply(msg)
        if msg.event == "QueueMember":
            assert doubled.apply(msg) == []
    assert doubled.agents() == before
    by_ext = {a.extension: a for a in before}
    assert (by_ext["104"].state, by_ext["104"].queues, by_ext["104"].name) == ("idle", ("sales",), "Дмитрий Соколов")
    assert by_ext["102"].state == "in_call" and by_ext["102"].queues == ("support", "support-linear")
    assert by_ext["101"].state == "ringing"  # a caller waits in support (ringall) at connect


def test_resync_drops_what_the_listing_no_longer_shows() -> None:
    """A membership or a channel the new listing does not show ended while the daemon was away."""
    board = AgentBoard(ModelConfig())
    board.apply(ev("QueueMemberAdded", Queue="support", MemberName="Анна", Interface="PJSIP/101",
                   StateInterface="PJSIP/101", Status="1", Paused="1", PausedReason="lunch"))
    board.apply(ev("QueueMemberAdded", Queue="other", Interface="PJSIP/101", StateInterface="PJSIP/101",
                   Status="1", Paused="0"))
    board.apply(ev("Newstate", Channel="PJSIP/101-00000001", Uniqueid="1.1", ChannelStateDesc="Up"))
    view = board.get("101")
    assert view is not None and (view.state, view.paused, view.queues) == ("in_call", True, ("other", "support"))
    board.apply(ev("CtiConnected"))
    assert board.apply(ev("CoreShowChannelsComplete", ActionID="a1"))[0].state == "paused"
    board.apply(ev("QueueParams", Queue="support", ActionID="a2"))
    effects = board.apply(ev("QueueStatusComplete", ActionID="a2"))
    assert [(e.state, e.paused, e.paused_reason, e.queues) for e in effects] == [("idle", False, None, ("other",))]


# -- inline fixtures ------------------------------------------------------------------------------


def test_paused_agent_taking_a_call_stays_paused_and_is_in_call() -> None:
    """A call wins over the pause: in_call with paused=True, back to paused when it ends."""
    board = AgentBoard(ModelConfig())
    script = [
        ev("QueueMemberPause", Timestamp="100.0", Queue="support", MemberName="Анна Смирнова", Interface="PJSIP/101",
           StateInterface="PJSIP/101", Status="1", Paused="1", PausedReason="break"),
        ev("Newchannel", Timestamp="101.0", Channel="PJSIP/101-0000000a", Uniqueid="9.1", ChannelStateDesc="Down"),
        ev("Newstate", Timestamp="101.1", Channel="PJSIP/101-0000000a", Uniqueid="9.1", ChannelStateDesc="Ringing"),
        ev("DeviceStateChange", Timestamp="101.1", Device="PJSIP/101", State="BUSY"),
        ev("Newstate", Timestamp="103.0", Channel="PJSIP/101-0000000a", Uniqueid="9.1", ChannelStateDesc="Up"),
        ev("Hangup", Timestamp="110.0", Channel="PJSIP/101-0000000a", Uniqueid="9.1"),
        ev("DeviceStateChange", Timestamp="110.0", Device="PJSIP/101", State="NOT_INUSE"),
    ]
    _, effects = replay(script, board)
    assert [(e.state, e.paused, e.paused_reason, e.at) for e in effects] == [
        ("paused", True, "break", 100.0), ("ringing", True, "break", 101.1), ("in_call", True, "break", 103.0),
        ("paused", True, "break", 110.0)]
    view = board.get("101")
    assert view is not None and view.device_state == "NOT_INUSE" and view.at == 110.0


def test_local_member_is_the_agent_of_its_state_interface() -> None:
    """Queue sales has member Local/104@agents watched through PJSIP/104; its Local channels are not 104's phone."""
    board = AgentBoard(ModelConfig())
    (added,) = board.apply(ev("QueueMemberAdded", Queue="sales", MemberName="Дмитрий Соколов",
                              Interface="Local/104@agents", StateInterface="PJSIP/104", Status="1", Paused="0"))
    assert (added.extension, added.name, added.state, added.queues) == ("104", "Дмитрий Соколов", "idle", ("sales",))
    assert board.apply(ev("Newstate", Channel="Local/104@agents-00000001;1", Uniqueid="5.1",
                          ChannelStateDesc="Ringing")) == []
    (ringing,) = board.apply(ev("Newstate", Channel="PJSIP/104-00000002", Uniqueid="5.3", ChannelStateDesc="Ringing"))
    assert ringing.state == "ringing"
    (paused,) = board.apply(ev("QueueMember", Queue="sales", Name="Дмитрий Соколов", Location="Local/104@agents",
                               StateInterface="PJSIP/104", Status="3", Paused="1", PausedReason="", ActionID="q"))
    assert (paused.state, paused.paused, paused.paused_reason) == ("ringing", True, None)
    (removed,) = board.apply(ev("QueueMemberRemoved", Queue="sales", MemberName="Дмитрий Соколов",
                                Interface="Local/104@agents", StateInterface="PJSIP/104"))
    assert (removed.queues, removed.paused) == ((), False)


def test_devices_that_are_not_agents_are_ignored_and_offline_wins_over_pause() -> None:
    board = AgentBoard(ModelConfig())
    for device in ("Queue:support_pause_PJSIP/101", "PJSIP/trunk", "Queue:support_avail", "Custom:101", "Local/101"):
        assert board.apply(ev("DeviceStateChange", Device=device, State="INUSE")) == []
    assert board.apply(ev("Newstate", Channel="PJSIP/trunk-00000001", Uniqueid="1.2", ChannelStateDesc="Up")) == []
    assert board.agents() == []
    board.apply(ev("QueueMemberPause", Queue="support", Interface="SIP/102", StateInterface="SIP/102", Status="1",
                   Paused="1", PausedReason="break"))
    (offline,) = board.apply(ev("DeviceStateChange", Device="SIP/102", State="UNAVAILABLE"))
    assert (offline.extension, offline.state, offline.paused) == ("102", "offline", True)
    (unknown,) = board.apply(ev("DeviceStateChange", Device="IAX2/103", State="UNKNOWN"))
    assert unknown.state == "unknown"


def test_device_state_stands_in_for_channels_the_board_never_saw() -> None:
    """Busy reported after the last channel change means a call the board has no channel of; a late
    repeat of a state already known does not."""
    board = AgentBoard(ModelConfig())
    (busy,) = board.apply(ev("DeviceStateChange", Device="PJSIP/105", State="INUSE"))
    assert busy.state == "in_call"
    (idle,) = board.apply(ev("DeviceStateChange", Device="PJSIP/105", State="NOT_INUSE"))
    assert idle.state == "idle"
    assert board.apply(ev("QueueMemberStatus", Queue="support", Interface="PJSIP/105", StateInterface="PJSIP/105",
                          MemberName="Елена Попова", Status="1", Paused="0"))[0].queues == ("support",)
    assert board.apply(ev("QueueMemberStatus", Queue="support", Interface="PJSIP/105", StateInterface="PJSIP/105",
                          MemberName="Елена Попова", Status="1", Paused="0")) == []


def test_ami_filters_let_the_agent_events_through() -> None:
    """One filter list for both tables: every event the board reads passes an include filter."""
    for event in AGENT_HANDLERS:
        if not event.startswith("Cti"):
            assert any(re.search(f, f"Event: {event}\r\nPrivilege: agent,all\r\n") for f in AMI_FILTERS), event
