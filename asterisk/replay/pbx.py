"""The replay PBX: a real TCP server that speaks AMI and plays back a recorded Asterisk trace.

Why it exists: the daemon, the integration tests, the benchmarks and ``cti demo`` all need an Asterisk
to connect to, and a real one (with SIP phones making calls) cannot run in CI. The folders of
``../shared/ami-traces`` hold what a real Asterisk 22 sent while real calls were made; this server
sends those same events again, over a real socket, behind the same login, so a client cannot tell it
from the PBX (the idea of wazo-calld's ``mock-wazo-amid``: fake a neighbour as a process that speaks its
protocol over the network, never as an in-process mock).

The pieces, one job each: :mod:`.trace` reads a trace folder; :mod:`.state` keeps the PBX's state and
answers the resync actions; :mod:`.actions` reads actions as Asterisk does and checks the user's rights;
:mod:`.session` is one client connection; this module is the server and the stream's timeline.

**Pacing.** Every event keeps its recorded time ``t`` (seconds after the recording's login). The
stream's clock starts when the first client has logged in with events on, and runs at ``speed`` times real
time (``speed=0`` or ``math.inf``: as fast as possible). From then on it goes on **whether or not a client is
connected**, as Asterisk does: a client that drops and reconnects has lost the events of the outage for good,
and learns the state at its reconnect from ``CoreShowChannels``/``QueueStatus``. (At ``speed=0`` with nobody
connected, the rest of the trace is served at once: use :meth:`ReplayPbx.pause` and :meth:`ReplayPbx.advance` to
lose exactly the events a test wants.) The stream stops only while it is held: by :meth:`ReplayPbx.pause`, by
:meth:`ReplayPbx.stop_answering_pings`, or, with the explicit ``pause_when_no_client=True``, while no client is
listening (the old test convenience; never the right choice for a fault test, since no PBX does it). Events
recorded in one TCP read (same ``t``) go out in one write. The stream never runs more than one write ahead of
the slowest connected client: that keeps :attr:`ReplayPbx.position` meaningful at ``speed=0``. A dropped
connection loses what was queued for it and not yet written, as a broken TCP connection would.
``chunk_size`` cuts every write into pieces (of that size; or, when ``chunk_seed`` is given, of random
sizes 1..``chunk_size`` drawn from that seed) with a ``drain()`` between them, so framing is tested
over real TCP reads (a Cyrillic name split between two reads). Nothing is replayed from before a
client connected: a PBX does not replay the past, it answers ``CoreShowChannels``.

**Resync.** :class:`~asterisk.replay.state.PbxState` is fed every served event. A trace recorded while calls
were already up (``25-resync-midcall``) seeds it with the ``CoreShowChannels``/``QueueStatus`` answers its runner
got at connect. So ``CoreShowChannels``, ``QueueStatus`` and ``Getvar`` are answered as Asterisk 22 would at the
current replay position (a ``Getvar`` on a channel that hung up: ``No such channel``).

**Time and ids.** The PBX's clock is the recorded ``Timestamp`` clock, moved along with the stream.
``rebase_time=True`` rewrites every ``Timestamp`` to the wall clock: recorded time since the stream's
start, divided by ``speed`` (kept as recorded at ``speed=0``/``inf``), plus the wall time the stream
started, re-anchored after every hold; so a demo looks live. With ``loop=True`` the trace list is
served again and again; pass *n* shifts every ``Timestamp`` (unless rebased) and the epoch part of
every ``…Uniqueid``/``…Linkedid`` value (``1795479360.12`` → ``<1795479360 + offset>.12``) by the same
whole number of seconds, *n* times the span of the whole recording, so no id of one pass collides with
another's; bridge UUIDs get their first field bumped by *n*. Channel names (``PJSIP/101-0000002a``)
are left as they are.

``redate=True`` (``cti demo``) moves each trace, as it starts, to the moment it is replayed, keeping its recorded
durations: every ``Timestamp`` and the epoch part of every ``…Uniqueid``/``…Linkedid`` value of that trace (and
its snapshot) are shifted by one whole number of seconds, the wall clock at the trace's start minus its recorded
start, never less than what keeps the PBX's clock going forward from the trace before. So the calls happen
today, in order, with ids a later run on the same journal never repeats; at ``speed`` 1 the PBX's clock is the
wall clock, faster it runs ahead by what the speed-up saves (it never goes back). ``rebase_time`` instead maps
every time onto the wall clock, durations divided by ``speed``, and keeps the recorded ids.

Actions are recorded (:attr:`ReplayPbx.received_actions`), never executed: ``Originate``,
``Redirect``, ``Hangup``, … are answered ``Success`` and change nothing in the stream. With ``live=True``
(``cti demo``) a ``QueuePause`` and a transfer (``Redirect``, ``BlindTransfer``, ``Atxfer``) of a call in progress
are answered with the events a real Asterisk 22 sends for them (:mod:`.live`), and the trace's own events are
served byte for byte as long as no such action was sent. They are read as
Asterisk's ``manager.c`` reads them (:class:`~asterisk.replay.actions.ActionReader`), not as our client reads
events: a line ends at LF with or without a CR, a NUL ends a header's text, a blank line ends the action. So a
client that lets a bare LF into a value is seen sending the extra headers or actions a real PBX would run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from asterisk.messages import AmiHeaderError, AmiMessage, Headers

from .actions import ActionReader, ReceivedAction, arg, class_names, classes_of, event_mask, permitted
from .live import LIVE_ACTIONS, LiveCalls
from .queues_conf import QueueMemberConf
from .recording import ReplayRecorder, SampleAudio, find_sample
from .session import Outgoing, Session, session_events
from .state import PbxState
from .trace import BANNER, Trace, load_trace

log = logging.getLogger(__name__)

#: Recorded time between two traces (and between two passes of a loop).
TRACE_GAP = 1.0
#: Actions that would change the PBX: recorded and answered ``Success``, never carried out.
_RECORDED_ONLY = {
    "originate": "Originate successfully queued",
    "redirect": "Redirect successful",
    "atxfer": "Atxfer successfully queued",
    "blindtransfer": "Transfer succeeded",
    "hangup": "Channel Hungup",
    "setvar": "Variable Set",
    "stopmixmonitor": "",
}
_EPOCH_ID = re.compile(r"^(\d+)\.(\d+)$")
_UUID = re.compile(r"^([0-9a-f]{8})(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


# -------------------------------------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class _Segment:
    trace: Trace
    start: float  # where the trace starts on the replay's timeline, within one pass


@dataclass(slots=True)
class _Clock:
    """The stream's timeline (recorded seconds) against the loop's clock and the wall clock."""

    speed: float
    running: bool = False
    vt: float = 0.0  # timeline position at ``mono``
    mono: float = 0.0
    # Rebase anchor: timeline position ``rb_vt`` was wall time ``rb_wall``.
    rb_vt: float = 0.0
    rb_wall: float = field(default_factory=time.time)

    @property
    def fast(self) -> bool:
        return self.speed == 0 or math.isinf(self.speed)

    def now(self) -> float:
        if self.running and not self.fast:
            return self.vt + (time.monotonic() - self.mono) * self.speed
        return self.vt

    def set_running(self, running: bool) -> None:
        if running == self.running:
            return
        self.vt, self.mono, self.running = self.now(), time.monotonic(), running
        if running:
            self.rb_vt, self.rb_wall = self.vt, time.time()

    def advance_to(self, vt: float) -> None:
        if vt > self.now():
            self.vt, self.mono = vt, time.monotonic()

    def wall(self, vt: float) -> float:
        """Wall-clock time of a timeline position (for ``rebase_time``)."""
        return self.rb_wall + (vt - self.rb_vt) / (1.0 if self.fast else self.speed)


class ReplayPbx:
    """An AMI server that serves recorded traces; see the module docstring for the rules it follows.

    Use it as ``async with ReplayPbx([folder]) as pbx: host, port = pbx.address`` or call
    :meth:`start` and :meth:`close`. The test hooks (:meth:`drop_connections`, :meth:`pause`,
    :meth:`stop_answering_pings`, :meth:`send_raw`, :attr:`received_actions`, :attr:`served_count`,
    :attr:`finished`, :attr:`position`) act on the running server from the test's own task.
    """

    def __init__(
        self,
        traces: Sequence[Path | Trace],
        *,
        username: str = "cti",
        secret: str = "cti-secret",
        speed: float = 1.0,
        loop: bool = False,
        rebase_time: bool = False,
        redate: bool = False,
        live: bool = False,
        queue_members: Sequence[QueueMemberConf] = (),
        chunk_size: int | None = None,
        chunk_seed: int | None = None,
        pause_when_no_client: bool = False,
        write: str = "all",
        recordings: Path | None = None,
        recording_audio: SampleAudio | None = None,
    ) -> None:
        if not traces:
            raise ValueError("give at least one trace folder")
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 or inf: as fast as possible)")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if rebase_time and redate:
            raise ValueError("rebase_time and redate are two ways of dating the calls: choose one")
        loaded = [t if isinstance(t, Trace) else load_trace(Path(t)) for t in traces]
        self.username, self.secret = username, secret
        #: The AMI user's ``write`` classes, as in manager.conf: ``all``, or e.g. ``call,originate,agent``.
        #: An action none of whose classes is granted is refused with "Permission denied", as Asterisk does.
        self.write: frozenset[str] | None = None if "all" in class_names(write) else classes_of(write)
        self.loop, self.rebase_time, self.redate = loop, rebase_time, redate
        #: The queues' static members as the PBX's queues.conf lists them: known from the start (``QueueStatus``
        #: lists them, a ``QueuePause`` finds them) before any event of the traces names them.
        self.queue_members = tuple(queue_members)
        self.chunk_size, self.chunk_seed = chunk_size, chunk_seed
        self.pause_when_no_client = pause_when_no_client
        self.banner = loaded[0].banner or BANNER

        self._segments: list[_Segment] = []
        start = 0.0
        for trace in loaded:
            self._segments.append(_Segment(trace, start))
            start += trace.length + TRACE_GAP
        self._pass_length = start
        stamps = [e.message.time for t in loaded for e in t.events if "Timestamp" in e.message]
        #: Whole seconds every pass of a loop moves Timestamps and ids by (the recording's span).
        self._pass_shift = math.ceil(max(stamps) - min(stamps) + TRACE_GAP) if stamps else 1

        #: Every action received, in order, with the id of the session that sent it.
        self.received_actions: list[ReceivedAction] = []
        #: Events served so far (over all passes), whether or not a client's mask let them through.
        self.served_count = 0
        #: Set once every event of every trace has been served (the first pass, with ``loop``).
        self.finished = asyncio.Event()
        self.state = PbxState()
        #: Synthesized answers to call control (``live``), else None: the traces are served as recorded.
        self.live = LiveCalls(self.state) if live else None
        #: Answers ``MixMonitor`` (``.recording``); with ``recordings``, writes the files there (a copy of
        #: ``recording_audio``, else of a real recording among the trace folders given, else silence).
        sample = recording_audio or find_sample(Path(t) for t in traces if isinstance(t, Path))
        self.recorder = ReplayRecorder(self.state, recordings, sample)
        #: ``redate``: the whole seconds the current trace is moved by, and where the trace before it ended.
        self._shift = 0
        self._prev_end = -math.inf

        self._clock = _Clock(speed)
        self._pass = 0
        self._seg = 0
        self._idx = 0
        self._done = not any(s.trace.events for s in self._segments)
        self._started = False
        self._paused = False
        self._silent = False
        self._sessions: dict[int, Session] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._next_sid = 1
        self._wake = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._seed()
        if self._done:
            self.finished.set()

    # -- public surface

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0 = any free port) and return the address actually bound."""
        self._server = await asyncio.start_server(self._handle, host, port)
        self._pump_task = asyncio.create_task(self._pump(), name="replay-pbx-pump")
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the replay PBX is not started")
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def close(self) -> None:
        """Stop listening, cut every client, stop the stream."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions.values()):
            session.abort()
        tasks = [t for t in (self._pump_task, *self._handlers) if t is not None]
        if self._pump_task is not None:
            self._pump_task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called or the task is cancelled (then close)."""
        try:
            await self._closed.wait()
        finally:
            await self.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def trace_names(self) -> list[str]:
        return [s.trace.name for s in self._segments]

    @property
    def position(self) -> int:
        """Index of the next event to serve in this pass, over the traces in order."""
        return sum(len(s.trace.events) for s in self._segments[: self._seg]) + self._idx

    @property
    def passes(self) -> int:
        """Completed passes over the trace list (only ever > 1 with ``loop``)."""
        return self._pass

    def pause(self) -> None:
        """Hold the event stream (actions are still answered)."""
        self._paused = True
        self._changed()

    def resume(self) -> None:
        self._paused = False
        self._changed()

    def stop_answering_pings(self, flag: bool = True) -> None:
        """``True``: the PBX hangs. Sockets stay open, nothing is answered, no event is sent."""
        self._silent = flag
        self._changed()

    def drop_connections(self) -> None:
        """Close every client socket abruptly (RST), mid-stream, as a broken network would.

        What was queued for a client and not yet written is lost with its connection. The stream goes on
        (unless paused, or ``pause_when_no_client``): the events served while nobody listens are lost too.
        """
        for session in list(self._sessions.values()):
            log.info("replay PBX: dropping session %d (%s)", session.id, session.peer)
            session.abort()
        self._sessions.clear()
        self._changed()

    def advance(self, count: int) -> int:
        """Serve the next ``count`` events now, paused or not, to whoever is connected (nobody: they are lost).

        For fault tests at ``speed=0``: ``pause()``, ``drop_connections()``, ``advance(n)`` makes exactly ``n``
        events happen on the PBX while the client is away. Whole recorded reads are served, so a few more than
        ``count`` may go. Returns how many were served.
        """
        served = self.served_count
        while not self._done and self.served_count - served < count:
            events = self._segments[self._seg].trace.events
            self._serve_group(self._seg_start() + events[self._idx].t)
        self._changed()
        return self.served_count - served

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are to every connected client (malformed or oversized frames)."""
        for session in self._sessions.values():
            session.send(data)

    def pbx_time(self) -> float:
        """The PBX's clock now (epoch seconds): the recorded clock, or the wall clock if rebased."""
        return self._clock_at(self._clock.now())

    # -- stream

    @staticmethod
    def _listening(session: Session) -> bool:
        """Logged in with events on: a client that logs in with ``Events: off`` to add its filters
        first (so no unfiltered event slips through) is not listening until its ``Events`` action."""
        return session.logged_in and session.mask != frozenset()

    def _runnable(self) -> bool:
        has_client = any(self._listening(s) for s in self._sessions.values())
        return (self._started and not self._paused and not self._silent
                and (has_client or not self.pause_when_no_client))

    def _changed(self) -> None:
        self._clock.set_running(self._runnable() and not self._done)
        self._wake.set()

    def _begin_stream(self) -> None:
        """The first login: the timeline starts now (and, rebased, the seed is re-stamped to it)."""
        self._started = True
        self._clock.set_running(True)  # anchors the wall clock to timeline 0
        if self.rebase_time or self.redate:
            self._redate_segment()
            self.state = PbxState()
            if self.live is not None:
                self.live.state = self.state
            self.recorder.state = self.state
            self._seed()
        self._changed()

    def _seg_start(self) -> float:
        return self._pass * self._pass_length + self._segments[self._seg].start

    def _clock_at(self, vt: float) -> float:
        if self.rebase_time:
            return self._clock.wall(vt)
        trace = self._segments[self._seg].trace
        return trace.epoch0 + (vt - self._seg_start()) + self._id_shift()

    def _id_shift(self) -> int:
        """Whole seconds the current trace's ``Timestamp``s and epoch ids are moved by (``rebase_time``: ids only)."""
        return self._shift if self.redate else self._pass * self._pass_shift

    def _redate_segment(self) -> None:
        """``redate``: the current trace starts now (or right after the trace before, if that ran ahead)."""
        if not self.redate:
            return
        trace = self._segments[self._seg].trace
        shift = math.ceil(time.time() - trace.epoch0)
        if self._prev_end > -math.inf:
            shift = max(shift, math.ceil(self._prev_end + TRACE_GAP - trace.epoch0))
        self._shift = shift
        self._prev_end = trace.epoch0 + trace.length + self._shift

    def _out_ts(self, recorded: float) -> float:
        """A recorded ``Timestamp`` of the current trace, as this pass serves it."""
        if self.rebase_time:
            trace = self._segments[self._seg].trace
            return self._clock.wall(self._seg_start() + recorded - trace.epoch0)
        return recorded + self._id_shift()

    def _transform(self, msg: AmiMessage) -> AmiMessage:
        if self._pass == 0 and not self.rebase_time and not self.redate:
            return msg
        shift, bump = self._id_shift(), self._pass
        headers: Headers = []
        for key, value in msg.headers:
            low = key.lower()
            if key == "Timestamp":
                with contextlib.suppress(ValueError):
                    value = f"{self._out_ts(float(value)):.6f}"
            elif low.endswith(("uniqueid", "linkedid")) or low == "bridgeid":
                if shift and (m := _EPOCH_ID.match(value)):
                    value = f"{int(m[1]) + shift}.{m[2]}"
                elif bump and (m := _UUID.match(value)):
                    value = f"{(int(m[1], 16) + bump) % 2**32:08x}{m[2]}"
            headers.append((key, value))
        return AmiMessage(headers=headers)

    def _seed(self) -> None:
        if self.queue_members:
            self.state.add_members(self.queue_members, self.pbx_time())
        trace = self._segments[self._seg].trace
        if trace.snapshot:
            # The snapshot was taken at the recording's login (t = 0), on the recorded clock.
            self.state.seed((self._transform(m) for m in trace.snapshot),
                            lambda ago: self._out_ts(trace.epoch0 - ago))

    async def _pump(self) -> None:
        """Serve the events at their pace, one recorded read at a time, while the stream may run."""
        while True:
            while self._done or not self._runnable():
                self._wake.clear()
                await self._wake.wait()
            events = self._segments[self._seg].trace.events
            due = self._seg_start() + events[self._idx].t
            delay = 0.0 if self._clock.fast else (due - self._clock.now()) / self._clock.speed
            if delay > 0.001:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue  # woken early, or time is up: look again
            self._serve_group(due)
            await asyncio.gather(*(s.idle.wait() for s in list(self._sessions.values())))
            await asyncio.sleep(0)

    def _serve_group(self, due: float) -> None:
        self._clock.advance_to(due)
        events = self._segments[self._seg].trace.events
        first = self._idx
        t = events[first].t
        end = first
        while end < len(events) and events[end].t == t:
            end += 1
        now = self.pbx_time()
        messages = [self._transform(item.message) for item in events[first:end]]
        if self.live is not None:
            messages = [out for msg in messages for out in self.live.on_trace_event(msg, now)]
        self._broadcast(messages, now)
        self.served_count += end - first
        self._idx = end
        self._advance()

    def _broadcast(self, messages: Sequence[AmiMessage], now: float) -> None:
        """Serve events: the PBX's state takes them, every logged-in session whose mask and filters accept
        one gets it, all in one write."""
        outgoing: list[Outgoing] = []
        for msg in messages:
            self.state.apply(msg, now)
            outgoing.append(Outgoing(msg.serialize(), classes_of(msg.get("Privilege", "all"))))
        for session in self._sessions.values():
            if session.logged_in:
                session.send(b"".join(o.frame for o in outgoing if session.accepts(o)))

    def _serve_live(self, messages: Sequence[AmiMessage]) -> None:
        """Synthesized events (``live``): served now, and whatever they set going later (a target that answers)."""
        if not self._silent and not self._closed.is_set():
            self._broadcast(messages, self.pbx_time())
        if self.live is not None:
            for delay, leg in self.live.take_scheduled():
                wait = 0.0 if self._clock.fast else delay / self._clock.speed
                asyncio.get_running_loop().call_later(wait, self._answer_leg, leg)

    def _answer_leg(self, leg: str) -> None:
        if self.live is not None and not self._closed.is_set():
            self._serve_live(self.live.answer(leg, self.pbx_time()))

    def _advance(self) -> None:
        """Move past finished traces: next trace, next pass (with ``loop``), or the end."""
        while self._idx >= len(self._segments[self._seg].trace.events):
            if self._seg + 1 < len(self._segments):
                self._seg += 1
            else:
                self.finished.set()
                if not self.loop:
                    self._done = True
                    self._clock.set_running(False)
                    log.info("replay PBX: trace served (%d events); staying up", self.served_count)
                    return
                self._pass, self._seg = self._pass + 1, 0
                log.info("replay PBX: pass %d", self._pass + 1)
            self._idx = 0
            self._redate_segment()
            self._seed()

    # -- sessions

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        sid = self._next_sid
        self._next_sid += 1
        session = Session(sid, writer, self.chunk_size, self.chunk_seed)
        self._sessions[sid] = session
        log.info("replay PBX: session %d connected from %s", sid, session.peer)
        try:
            session.send(f"{self.banner}\r\n".encode())
            async with asyncio.TaskGroup() as tg:
                tg.create_task(session.write_loop())
                await self._read_loop(session, reader)
                session.finish()
        finally:
            self._sessions.pop(sid, None)
            log.info("replay PBX: session %d closed", sid)
            self._changed()
            if task is not None:
                self._handlers.discard(task)

    async def _read_loop(self, session: Session, reader: asyncio.StreamReader) -> None:
        framer = ActionReader()
        while not session.closed:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                return
            if not data:
                framer.receive_eof()
                return
            framer.receive_data(data, time.time())
            for msg in framer.events_received():
                if not self._on_action(session, msg):
                    return

    def _respond(self, session: Session, request: AmiMessage, response: str, *pairs: tuple[str, str],
                 items: Sequence[AmiMessage] = ()) -> None:
        """Send ``Response: …`` (ActionID echoed right after it, as Asterisk does) and any list items."""
        if self._silent:
            return
        action_id = arg(request, "ActionID")
        reply = AmiMessage(headers=[("Response", response), *([("ActionID", action_id)] if action_id else []),
                                    *pairs])
        try:
            session.send(reply.serialize() + b"".join(i.serialize() for i in items))
        except AmiHeaderError as exc:  # an echoed value (a U+2028 in a Getvar's name...) we cannot write
            log.warning("replay PBX: session %d: answer not sent: %s", session.id, exc)
            session.send(AmiMessage(headers=[("Response", "Error"), ("Message", "Invalid header")]).serialize())

    def _on_action(self, session: Session, msg: AmiMessage) -> bool:
        """Answer one action; ``False`` ends the session (Logoff, refused login)."""
        self.received_actions.append(ReceivedAction(session.id, msg))
        name = arg(msg, "Action")
        key = name.lower()
        log.info("replay PBX: session %d: action %s %s", session.id, name or "?", arg(msg, "ActionID"))
        if key == "login":
            return self._login(session, msg)
        if key == "logoff":
            self._respond(session, msg, "Goodbye", ("Message", "Thanks for all the fish."))
            return False
        if not session.logged_in:
            self._respond(session, msg, "Error", ("Message", "Permission denied"))
            return True
        action_id = [("ActionID", arg(msg, "ActionID"))] if arg(msg, "ActionID") else []
        if not permitted(self.write, name):
            self._respond(session, msg, "Error", ("Message", "Permission denied"))
            return True
        if key == "ping":
            self._respond(session, msg, "Success", ("Ping", "Pong"), ("Timestamp", f"{self.pbx_time():.6f}"))
        elif key == "coreshowchannels":
            items = self.state.core_show_channels(self.pbx_time(), action_id)
            self._respond(session, msg, "Success", ("EventList", "start"), ("Message", "Channels will follow"),
                          items=[*items, _complete("CoreShowChannelsComplete", action_id, len(items))])
        elif key == "queuestatus":
            items = self.state.queue_status(self.pbx_time(), action_id, arg(msg, "Queue"), arg(msg, "Member"))
            self._respond(session, msg, "Success", ("EventList", "start"),
                          ("Message", "Queue status will follow"),
                          items=[*items, _complete("QueueStatusComplete", action_id, len(items))])
        elif key == "events":
            session.mask = event_mask(arg(msg, "EventMask"))
            self._respond(session, msg, "Success", ("Events", "Off" if session.mask == frozenset() else "On"))
            if not self._started and self._listening(session):
                self._begin_stream()
            self._changed()
        elif key == "filter":
            self._filter(session, msg)
        elif key == "getvar":
            channel = arg(msg, "Channel")
            if channel and not self.state.has_channel(channel):
                self._respond(session, msg, "Error", ("Message", "No such channel"))
            else:
                value = self.state.variables.get(channel, {}).get(arg(msg, "Variable"), "")
                self._respond(session, msg, "Success", ("Variable", arg(msg, "Variable")), ("Value", value))
        elif key == "mixmonitor":
            started = self.recorder.act(msg, self.pbx_time())
            self._respond(session, msg, "Success" if started.ok else "Error",
                          *([("Message", started.message)] if started.message else []))
            self._serve_live(started.events)
        elif self.live is not None and key in LIVE_ACTIONS:
            answer = self.live.act(msg, self.pbx_time())
            self._respond(session, msg, "Success" if answer.ok else "Error", ("Message", answer.message))
            self._serve_live(answer.events)
        elif key == "queuepause":
            paused = arg(msg, "Paused").lower() in ("1", "yes", "true", "on", "y", "t")
            text = "Interface paused successfully" if paused else "Interface unpaused successfully"
            self._respond(session, msg, "Success", ("Message", text))
        elif key in _RECORDED_ONLY:
            text = _RECORDED_ONLY[key]
            self._respond(session, msg, "Success", *([("Message", text)] if text else []))
        else:
            self._respond(session, msg, "Error", ("Message", f"Invalid/unknown command: {name}. "
                                                             "Use Action: ListCommands to show available commands."))
        return True

    def _login(self, session: Session, msg: AmiMessage) -> bool:
        if arg(msg, "Username") != self.username or arg(msg, "Secret") != self.secret:
            log.info("replay PBX: session %d: login refused for %r", session.id, arg(msg, "Username"))
            self._respond(session, msg, "Error", ("Message", "Authentication failed"))
            return False  # Asterisk closes the connection after a failed login
        session.logged_in = True
        session.mask = event_mask(arg(msg, "Events"))
        log.info("replay PBX: session %d: logged in as %s (events %s)", session.id, self.username,
                 arg(msg, "Events") or "on")
        self._respond(session, msg, "Success", ("Message", "Authentication accepted"))
        if not self._started and self._listening(session):
            self._begin_stream()
        if not self._silent:
            for event in session_events(session, self.username, self.pbx_time()):
                if session.mask is None or event.classes & session.mask:
                    session.send(event.frame)
        self._changed()
        return True

    def _filter(self, session: Session, msg: AmiMessage) -> None:
        operation = arg(msg, "Operation").lower()
        text = arg(msg, "Filter")
        if operation != "add":
            self._respond(session, msg, "Error", ("Message", "Unknown operation"))
            return
        exclude = text.startswith("!")
        try:
            pattern = re.compile(text[1:] if exclude else text)
        except re.error:
            self._respond(session, msg, "Error",
                          ("Message", "Filter did not compile.  Check the syntax of the filter given."))
            return
        (session.excludes if exclude else session.includes).append(pattern)
        self._respond(session, msg, "Success", ("Message", "Success"))


def _complete(event: str, action_id: Headers, count: int) -> AmiMessage:
    return AmiMessage(headers=[("Event", event), *action_id, ("EventList", "Complete"), ("ListItems", str(count))])


async def run_replay_pbx(
    traces: Sequence[Path],
    host: str = "127.0.0.1",
    port: int = 5038,
    *,
    username: str = "cti",
    secret: str = "cti-secret",
    speed: float = 1.0,
    loop: bool = False,
    rebase_time: bool = False,
    redate: bool = False,
    live: bool = False,
    queue_members: Sequence[QueueMemberConf] = (),
    chunk_size: int | None = None,
    chunk_seed: int | None = None,
    pause_when_no_client: bool = False,
) -> None:
    """Serve ``traces`` on ``host:port`` until cancelled (``cti replay-pbx TRACE``)."""
    pbx = ReplayPbx(traces, username=username, secret=secret, speed=speed, loop=loop, rebase_time=rebase_time,
                    redate=redate, live=live, queue_members=queue_members, chunk_size=chunk_size,
                    chunk_seed=chunk_seed, pause_when_no_client=pause_when_no_client)
    bound_host, bound_port = await pbx.start(host, port)
    log.info("replay PBX listening on %s:%d: %s (speed %s%s)", bound_host, bound_port,
             ", ".join(pbx.trace_names), speed, ", loop" if loop else "")
    await pbx.serve_forever()
