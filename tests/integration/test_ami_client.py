"""The AMI client against the replay PBX over real loopback TCP: what the daemon sees of its PBX.

Each test drives ``AmiClient.run()`` in a task, with ``asterisk.replay.ReplayPbx`` as the PBX, and
checks what reaches the sink (the call model's single entry point) and what the PBX was asked to do.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from asterisk.connection import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiClient,
    AmiConnectionLost,
    AmiNotConnected,
)
from asterisk.messages import AmiMessage, action
from asterisk.replay import ReplayPbx, load_trace
from tests.conftest import ReplayFactory

from .conftest import UNIT, Recorder, ami_settings, running, trace, until

#: What the replay PBX gives every session right after its login (not part of the trace's stream).
SESSION_EVENTS = {"FullyBooted", "SuccessfulAuth"}


def our_action_ids(pbx: ReplayPbx) -> set[str]:
    return {a.message.action_id for a in pbx.received_actions if a.message.action_id}


def stream_events(recorder: Recorder, pbx: ReplayPbx) -> list[list[tuple[str, str]]]:
    """The trace's events as the sink got them: without our synthetic events, the session's own
    events and the answers to our own actions (resync items)."""
    ours = our_action_ids(pbx)
    return [
        m.headers
        for m in recorder.messages
        if not m.event.startswith("Cti") and m.event not in SESSION_EVENTS and m.action_id not in ours
    ]


def served_events(name: str) -> list[list[tuple[str, str]]]:
    return [e.message.headers for e in load_trace(trace(name)).events]


def pause_after(pbx: ReplayPbx, recorder: Recorder, count: int) -> None:
    """Hold the replay's stream as soon as the sink has had ``count`` of its events: the stream stops
    after the recorded read that event came in (``served_count`` may be a little higher)."""

    def hook(msg: AmiMessage) -> None:
        if len(stream_events(recorder, pbx)) == count:
            pbx.pause()

    recorder.hook = hook


def actions_named(pbx: ReplayPbx, name: str) -> list[AmiMessage]:
    return [a.message for a in pbx.received_actions if a.message.action == name]


@pytest.mark.parametrize("name", ["07-queue-ringall-answered", "25-resync-midcall"])
async def test_every_event_of_a_trace_reaches_the_sink_in_order(
    name: str, replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """Logged in with Events: on, the sink gets the trace's events, all of them, unchanged, in order."""
    pbx = await replay_pbx([trace(name)], speed=0)
    client = AmiClient(ami_settings(pbx), recorder)
    expected = served_events(name)
    async with running(client):
        await asyncio.wait_for(pbx.finished.wait(), 10 * UNIT)
        await recorder.wait_for(lambda: len(stream_events(recorder, pbx)) >= len(expected))
        assert stream_events(recorder, pbx) == expected
        assert client.connected and client.connections == 1 and client.last_error is None
    login = actions_named(pbx, "Login")[0]
    assert (login["Username"], login["Events"]) == ("cti", "on")
    # The session starts with our marker, before anything the PBX sent.
    assert recorder.messages[0].event == "CtiConnected"
    assert recorder.messages[0]["Port"] == str(pbx.address[1])
    assert all(m.received_at > 0 for m in recorder.messages)


async def test_cyrillic_names_split_across_one_byte_reads_arrive_intact(
    replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """With the PBX writing one byte at a time, every UTF-8 caller name is decoded whole."""
    name = "37-click-to-call-cyrillic-connected"
    pbx = await replay_pbx([trace(name)], speed=0, chunk_size=1)
    client = AmiClient(ami_settings(pbx), recorder, resync_actions=())
    expected = served_events(name)
    async with running(client):
        await asyncio.wait_for(pbx.finished.wait(), 20 * UNIT)
        await recorder.wait_for(lambda: len(stream_events(recorder, pbx)) >= len(expected), 10)
    assert stream_events(recorder, pbx) == expected
    names = {m.get("ConnectedLineName") for m in recorder.messages}
    assert "ООО Ёлка — Фёдорова Алёна" in names


async def test_a_name_cut_inside_a_utf8_character_between_two_reads_is_decoded_whole(
    replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """One frame written in two pieces, a pause between them, the cut inside 'Ё' (two UTF-8 bytes):
    panoramisk would drop the character; the client decodes the frame once it is whole."""
    pbx = await replay_pbx([trace("23-cyrillic-anonymous")], speed=0)
    pbx.pause()
    client = AmiClient(ami_settings(pbx), recorder, resync_actions=())
    frame = "Event: Newchannel\r\nCallerIDName: Ёлкина Алёна\r\nUniqueid: 1.2\r\n\r\n".encode()
    cut = frame.index("Ё".encode()) + 1
    async with running(client):
        await recorder.wait_for(lambda: bool(recorder.named("CtiClock")))  # nothing else left to answer
        pbx.send_raw(frame[:cut])
        await asyncio.sleep(0.05 * UNIT)  # the client reads the first piece on its own
        pbx.send_raw(frame[cut:])
        await recorder.wait_for(lambda: bool(recorder.named("Newchannel")))
    assert recorder.named("Newchannel")[0]["CallerIDName"] == "Ёлкина Алёна"


async def test_malformed_and_oversized_frames_are_skipped_and_the_stream_goes_on(
    replay_pbx: ReplayFactory, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A frame with no header line and one over max_frame_size are logged and skipped; nothing else is lost."""
    name = "01-direct-answered"
    pbx = await replay_pbx([trace(name)], speed=0)
    pause_after(pbx, recorder, 20)  # the bad frames land mid-trace, between two recorded events
    client = AmiClient(ami_settings(pbx, max_frame_size=4096), recorder)
    with caplog.at_level(logging.WARNING, logger="asterisk.connection"):
        async with running(client):
            await recorder.wait_for(lambda: 20 <= len(stream_events(recorder, pbx)) == pbx.served_count)
            recorder.hook = None
            pbx.send_raw(
                b"this line is no header\r\nnor this one\r\n\r\n"
                + b"Event: Huge\r\nData: "
                + b"x" * 10_000
                + b"\r\n\r\n"
                + b"Event: NotKnownToAnyone\r\nUniqueid: 1.1\r\n\r\n"
            )
            await recorder.wait_for(lambda: bool(recorder.named("NotKnownToAnyone")))
            pbx.resume()
            await asyncio.wait_for(pbx.finished.wait(), 10 * UNIT)
            expected = served_events(name)
            await recorder.wait_for(lambda: len(stream_events(recorder, pbx)) >= len(expected) + 1)
            assert client.connections == 1, "a bad frame must not cost the connection"
    events = stream_events(recorder, pbx)
    assert [AmiMessage(h).event for h in events].count("NotKnownToAnyone") == 1
    assert [h for h in events if AmiMessage(h).event != "NotKnownToAnyone"] == expected
    assert not recorder.named("Huge")
    skipped = [r.getMessage() for r in caplog.records if "AMI frame skipped" in r.getMessage()]
    assert len(skipped) == 2
    assert "no header line" in skipped[0] and "oversized frame" in skipped[1]
    assert all(r.levelno == logging.WARNING for r in caplog.records if "AMI frame skipped" in r.getMessage())


async def test_wrong_secret_is_reported_and_retried_with_growing_back_off(
    replay_pbx: ReplayFactory, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused login logs one clear error per attempt, retries ever more slowly, and never crashes."""
    pbx = await replay_pbx([trace("01-direct-answered")], speed=0)
    settings = ami_settings(pbx, secret="not-the-secret", reconnect_min=0.1 * UNIT, reconnect_max=2.0 * UNIT)
    client = AmiClient(settings, recorder)
    host, port = pbx.address
    line = f"AMI login refused by {host}:{port} for user 'cti': Authentication failed — check [ami] username and secret"

    def refusals() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "asterisk.connection" and r.levelno >= logging.ERROR]

    with caplog.at_level(logging.INFO, logger="asterisk.connection"):
        async with running(client, wait=False) as task:
            await until(lambda: len(refusals()) >= 4, 5)
            assert not task.done(), "run() must keep retrying, not end or raise"
            assert not client.connected and client.connections == 0
            assert client.last_error == line
            with pytest.raises(AmiNotConnected, match="Authentication failed"):
                await client.send_action(action("Ping"))
    records = refusals()
    assert all(r.getMessage() == line for r in records)
    logins = actions_named(pbx, "Login")
    assert len(logins) == len(records), "one error line per attempt"
    gaps = [b.created - a.created for a, b in itertools.pairwise(records)]
    assert gaps[0] >= 0.1 * UNIT
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps)), gaps
    assert not [m for m in recorder.messages if m.event.startswith("Cti")], "no session, no CtiConnected"


async def test_dropped_connection_reconnects_resyncs_and_loses_nothing(
    replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """After the PBX drops us mid-call: CtiDisconnected, reconnect, CtiConnected, a fresh snapshot of the
    calls in progress, then the rest of the stream, with no event lost or repeated."""
    name = "07-queue-ringall-answered"
    # The client's own guarantee (nothing it was sent is lost or repeated) is checked on a PBX that holds its
    # stream while nobody listens; a PBX that goes on is tests/daemon/test_drop_every_index.py's case.
    pbx = await replay_pbx([trace(name)], speed=0, pause_when_no_client=True)
    expected = served_events(name)
    middle = len(expected) // 2
    pause_after(pbx, recorder, middle)
    client = AmiClient(ami_settings(pbx), recorder)
    async with running(client):
        await recorder.wait_for(lambda: middle <= len(stream_events(recorder, pbx)) == pbx.served_count)
        recorder.hook = None
        pbx.drop_connections()
        pbx.resume()  # the stream waits for the next login (pause_when_no_client=True)
        await recorder.wait_for(lambda: client.connections == 2)
        await asyncio.wait_for(pbx.finished.wait(), 10 * UNIT)
        await recorder.wait_for(lambda: len(stream_events(recorder, pbx)) >= len(expected))
        assert stream_events(recorder, pbx) == expected

    markers = [m.event for m in recorder.messages if m.event in ("CtiConnected", "CtiDisconnected")]
    assert markers[:3] == ["CtiConnected", "CtiDisconnected", "CtiConnected"]
    assert recorder.named("CtiDisconnected")[0]["Reason"]
    # Each login was followed by both resync actions...
    sessions = {a.session for a in pbx.received_actions}
    assert len(sessions) == 2
    for session in sessions:
        names = [a.message.action for a in pbx.received_actions if a.session == session]
        assert names[:1] == ["Login"] and {"CoreShowChannels", "QueueStatus"} <= set(names)
    # ... and the second snapshot, after the second CtiConnected, lists the calls still up.
    second = max(i for i, m in enumerate(recorder.messages) if m.event == "CtiConnected")
    snapshot = [m for m in recorder.messages[second:] if m.event == "CoreShowChannel"]
    assert snapshot, "channels were up when the connection dropped"
    assert any(m.event == "QueueParams" for m in recorder.messages[second:])
    # A channel listed in the snapshot is one the stream created and had not hung up before the drop.
    uniqueids = {m["Uniqueid"] for m in snapshot}
    before_drop = recorder.messages[:second]
    created = {m["Uniqueid"] for m in before_drop if m.event == "Newchannel"}
    hung_up = {m["Uniqueid"] for m in before_drop if m.event == "Hangup"}
    assert uniqueids <= created - hung_up


async def test_a_pbx_that_stops_answering_pings_is_detected_and_left(
    replay_pbx: ReplayFactory, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """No answer to a Ping within ping_timeout: the connection is dropped and a new one made."""
    pbx = await replay_pbx([trace("01-direct-answered")], speed=1)
    interval, timeout = 0.2 * UNIT, 0.3 * UNIT
    client = AmiClient(ami_settings(pbx, ping_interval=interval, ping_timeout=timeout), recorder)
    async with running(client):
        await until(lambda: len(actions_named(pbx, "Ping")) >= 2)  # the watchdog is running
        pbx.stop_answering_pings(True)
        hung_at = time.monotonic()
        await recorder.wait_for(lambda: bool(recorder.named("CtiDisconnected")))
        detected_after = time.monotonic() - hung_at
        assert not client.connected
        pbx.stop_answering_pings(False)
        await recorder.wait_for(lambda: client.connections == 2)
    assert detected_after <= interval + timeout + 0.2 * UNIT
    assert "Ping" in recorder.named("CtiDisconnected")[0]["Reason"]
    assert any("looks dead" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


async def test_pending_originate_fails_on_drop_and_is_never_sent_again(
    replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """An Originate unanswered when the connection drops fails with AmiConnectionLost and is not
    re-sent after the reconnect; a read-only Getvar in the same situation is sent again and answered."""
    pbx = await replay_pbx([trace("16-click-to-call-answered")], speed=1)
    client = AmiClient(ami_settings(pbx, action_timeout=5 * UNIT), recorder)
    async with running(client):
        await until(lambda: bool(actions_named(pbx, "QueueStatus")))
        pbx.stop_answering_pings(True)  # the PBX hangs: nothing is answered any more
        originate = asyncio.create_task(
            client.send_action(
                action(
                    "Originate",
                    Channel="PJSIP/101",
                    Context="from-internal",
                    Exten="89161234567",
                    Priority="1",
                    Async="true",
                )
            )
        )
        getvar = asyncio.create_task(client.send_action(action("Getvar", Variable="CHANNEL_NONE")))
        await until(lambda: bool(actions_named(pbx, "Originate")) and bool(actions_named(pbx, "Getvar")))
        pbx.drop_connections()
        pbx.stop_answering_pings(False)
        with pytest.raises(AmiConnectionLost, match="Originate"):
            await originate
        answer = await getvar
        assert answer.response.response == "Success"
        assert client.connections == 2
        # Anything re-sent at the reconnect would have reached the PBX before this Ping's answer.
        await client.send_action(action("Ping"))
    assert len(actions_named(pbx, "Originate")) == 1
    assert len(actions_named(pbx, "Getvar")) == 2


async def test_action_outcomes_timeout_error_and_not_connected(replay_pbx: ReplayFactory, recorder: Recorder) -> None:
    """No answer in time → AmiActionTimeout; Response: Error → AmiActionFailed with the PBX's message;
    no session → AmiNotConnected; a listing action returns its items."""
    pbx = await replay_pbx([trace("25-resync-midcall")], speed=1)
    client = AmiClient(ami_settings(pbx), recorder)
    with pytest.raises(AmiNotConnected):
        await client.send_action(action("Ping"))
    async with running(client):
        listing = await client.send_action(action("CoreShowChannels"))
        assert listing.response["EventList"] == "start"
        assert listing.events and all(e.event == "CoreShowChannel" for e in listing.events)
        # The sink got the same items (the call model reads resync answers through it).
        delivered = [m for m in recorder.messages if m.action_id == listing.response.action_id]
        assert [m.event for m in delivered] == ["CoreShowChannel"] * len(listing.events) + ["CoreShowChannelsComplete"]
        assert delivered[:-1] == listing.events
        with pytest.raises(AmiActionFailed, match="Invalid/unknown command") as failed:
            await client.send_action(action("NoSuchAction"))
        assert failed.value.response.response == "Error"
        pbx.stop_answering_pings(True)
        started = time.monotonic()
        with pytest.raises(AmiActionTimeout):
            await client.send_action(action("Status"), timeout=0.2 * UNIT)
        assert 0.2 * UNIT <= time.monotonic() - started < 1.0 * UNIT
        pbx.stop_answering_pings(False)
        assert (await client.send_action(action("Ping"))).response["Ping"] == "Pong"


async def test_only_the_asked_for_events_cross_the_wire_and_none_of_them_is_lost(
    replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """With filters, the client logs in with events off, adds every Filter, then turns its event classes
    on: from then on, exactly the wanted events arrive. (Turned on at login, unwanted events would leak
    in before the first filter, and events only the second filter admits would be dropped meanwhile.)"""
    names = ["07-queue-ringall-answered", "25-resync-midcall", "01-direct-answered"]
    pbx = await replay_pbx([trace(n) for n in names], speed=0)  # the stream flows from the first login on
    filters = [r"^Event: Newchannel\r", r"^Event: Hangup\r"]
    client = AmiClient(ami_settings(pbx, events="call"), recorder, filters=filters)
    async with running(client):
        await asyncio.wait_for(pbx.finished.wait(), 10 * UNIT)
        await client.send_action(action("Ping"))  # everything served is in by its answer
    wanted = [h for n in names for h in served_events(n) if AmiMessage(h).event in ("Newchannel", "Hangup")]
    got = stream_events(recorder, pbx)
    assert len(got) > len(wanted) // 2, "events were turned on early in the stream"
    assert got == wanted[len(wanted) - len(got) :], "from the moment events are on, all and only the wanted"
    login = actions_named(pbx, "Login")[0]
    assert login["Events"] == "off"
    sent = [(a.message.action, a.message.get("Filter") or a.message.get("EventMask")) for a in pbx.received_actions]
    assert sent[1:6] == [
        ("Filter", filters[0]),
        ("Filter", filters[1]),
        ("Events", "call"),
        ("Ping", ""),
        ("CoreShowChannels", ""),
    ]
    assert all(a.message["Operation"] == "Add" for a in pbx.received_actions if a.message.action == "Filter")


async def test_without_filters_the_event_classes_are_asked_for_at_login(
    replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """No filters: Login carries the Events mask itself, and only those classes arrive."""
    name = "07-queue-ringall-answered"
    pbx = await replay_pbx([trace(name)], speed=0)
    pbx.pause()
    client = AmiClient(ami_settings(pbx, events="agent"), recorder)
    async with running(client):
        await until(lambda: bool(actions_named(pbx, "QueueStatus")))
        pbx.resume()
        await asyncio.wait_for(pbx.finished.wait(), 10 * UNIT)
        await client.send_action(action("Ping"))
    assert actions_named(pbx, "Login")[0]["Events"] == "agent"
    expected = [h for h in served_events(name) if "agent" in AmiMessage(h).get("Privilege")]
    assert expected and stream_events(recorder, pbx) == expected


async def test_the_pbx_clock_is_handed_to_the_sink_before_the_snapshot(
    replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """CtiConnected, then CtiClock with the PBX's own clock (from a Ping), then the resync items."""
    pbx = await replay_pbx([trace("25-resync-midcall")], speed=1)
    client = AmiClient(ami_settings(pbx), recorder)
    async with running(client):
        await recorder.wait_for(lambda: bool(recorder.named("QueueStatusComplete")))
    order = [m.event for m in recorder.messages if m.event.startswith(("Cti", "CoreShowChannel", "Queue"))]
    assert order[:2] == ["CtiConnected", "CtiClock"]
    assert order.index("CtiClock") < order.index("CoreShowChannel") < order.index("QueueParams")
    pbx_time = float(recorder.named("CtiClock")[0]["PbxTime"])
    assert abs(pbx_time - load_trace(trace("25-resync-midcall")).epoch0) < 5  # the recorded clock, not ours


async def test_cancelling_run_logs_off_and_closes_the_socket(replay_pbx: ReplayFactory, recorder: Recorder) -> None:
    """Cancelling run() sends Logoff, gets Goodbye, closes the connection and ends the session."""
    pbx = await replay_pbx([trace("01-direct-answered")], speed=1)
    client = AmiClient(ami_settings(pbx), recorder)
    task = asyncio.create_task(client.run())
    await client.wait_connected(5 * UNIT)
    await until(lambda: bool(actions_named(pbx, "QueueStatus")))
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0 * UNIT
    assert pbx.received_actions[-1].message.action == "Logoff"
    assert not client.connected
    assert recorder.messages[-1].event == "CtiDisconnected"
    assert recorder.messages[-1]["Reason"] == "closed by the client"
    with pytest.raises(AmiNotConnected):
        await client.send_action(action("Ping"))
