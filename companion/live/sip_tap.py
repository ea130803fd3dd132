"""The SIP audio tap: the daemon as a SIP endpoint of the PBX, each answered call an async stream of audio frames.

The only module that imports pyVoIP (GPL-3.0, the optional ``live`` extra: README). The daemon asks the PBX through AMI
to spy on a call and send it to this endpoint (``Originate`` of a ``ChanSpy``, one call per lane, the caller id
:func:`~companion.live.sip_messages.tap_user` naming the tap and the lane); :class:`SipTap` answers the calls it was
told to expect and hands each to asyncio as a :class:`TappedCall`, an async iterator of
:class:`~cti.live.AudioFrame`::

    async with SipTap(settings.live) as tap:             # binds, registers (and re-registers, forever)
        tap.expect(tap_id)                                # before the Originate: calls naming it are answered
        await ami.originate(..., caller_id=tap_user(tap_id, "agent"))
        call = await tap.wait_call(tap_id, "agent", timeout=5)
        async for frame in call:                          # ends when either side hangs up
            recogniser.feed(frame)
        await tap.hang_up(tap_id)                         # the call ended first: BYE, threads and sockets gone

pyVoIP 1.6.8 is used for what it does well, SIP parsing, the INVITE's SDP and the 200 OK with ours, and the RTP
client's plumbing, through subclasses of its ``SIPClient``, ``VoIPPhone``, ``VoIPCall`` and ``RTPClient`` (nothing
in the library is patched globally). What it does badly is replaced in those subclasses:

* **audio**: its RTP client decodes to 8-bit PCM, fills gaps with full-scale bytes and grows without bound on a
  timestamp jump. ``_TapRtpClient.recv`` takes each datagram's raw payload instead, into
  :class:`~companion.live.rtp_audio.LaneAssembler` (16-bit PCM through ``recognizer/audio.py``'s tables, a jitter
  window, bounded silence), and sends nothing (the SDP answer says ``recvonly``): no transmitter thread.
* **threads**: its receivers poll a non-blocking socket every 10 ms and its ``read_audio`` spins on silence; ours
  block in ``recvfrom`` with a short timeout (which also flushes a quiet lane), close their own socket on the way out
  (no descriptor closed under a thread still reading it), and every result crosses to the event loop by
  ``loop.call_soon_threadsafe``, in order. Nothing on the loop blocks: stopping and hanging up run in worker threads.
* **registration**: pyVoIP stops the phone after three failures; ours (``sip_messages``) retries with a back-off
  forever, answers the digest with ``qop=auth``, and keeps handling INVITEs while it waits for the registrar.
* **calls**: pyVoIP answers after a 1 s timer and any caller at all; ours answers at once and only a call naming an
  expected tap (others get 403, a call without G.711 488), from the PBX's address only; an ``OPTIONS`` gets 200.
* **ports**: pyVoIP never gives back an incoming call's RTP port and, once the range is used up, frees all of them,
  in use or not; ours frees a call's port when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import select
import socket
import threading
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

with warnings.catch_warnings():  # pyVoIP imports audioop, deprecated since 3.11 (audioop-lts from 3.13)
    warnings.simplefilter("ignore", DeprecationWarning)
    # pyVoIP.VoIP first: importing pyVoIP.SIP first fails on the package's own circular import
    from pyVoIP.VoIP.VoIP import CallState, InvalidStateError, NoPortsAvailableError, VoIPCall, VoIPPhone

    # isort: split
    from pyVoIP import RTP, SIP

from cti.live import LIVE_RATE, AudioFrame, Lane
from ui_bridge.live_settings import LiveSettings

from .rtp_audio import MAX_PACKET, PCMA, PCMU, LaneAssembler, LaneCounters, parse_rtp
from .sip_messages import (
    Challenge,
    Registration,
    SipResponse,
    backoff,
    bye_request,
    granted_expiry,
    parse_challenge,
    parse_response,
    parse_tap_user,
    request_method,
    response_to,
)

log = logging.getLogger("companion.live")

#: How long a receiving thread blocks at most: how fast it sees a stop, and how quiet a lane is before what it holds
#: in its jitter window is handed out.
POLL_SECONDS = 0.1
#: Audio gathered in a thread before it crosses to the event loop (fewer wake-ups; the latency it adds).
BATCH_SECONDS = 0.1
#: At the call's end, at most this many packets still waiting in a lane's socket are read (40 s of 20 ms packets; a
#: socket's default buffer holds a few hundred, so the buffer, not this, is the usual bound).
DRAIN_PACKETS = 2000
_DECODED = {str(PCMU), str(PCMA)}


@dataclass(slots=True)
class RegistrationState:
    """Where the tap's registration stands (for ``/api/health`` and the logs)."""

    registered: bool = False
    #: Successful registrations so far (the first, then every refresh), and failures in a row now.
    registrations: int = 0
    failures: int = 0
    attempts: int = 0
    last_error: str | None = None
    #: Seconds the registrar granted the last time.
    expires: int = 0


class TapClosed(Exception):
    """The tap was stopped while something waited for a call."""


class TappedCall:
    """One lane of one tapped call, answered: an async iterator of its frames, ended when the call ends.

    Frames come contiguous and in order (``start`` is where each plays in the lane, by the RTP clock; lost or
    jumped stretches as silence marked ``filled``). A consumer slower than real time loses the oldest audio beyond
    ``max_backlog`` seconds (counted in :attr:`dropped_seconds`), never the daemon's memory.
    """

    def __init__(self, tap_id: str, lane: Lane, call_id: str, codec: str, remote: tuple[str, int],
                 *, max_backlog: float) -> None:
        self.tap_id = tap_id
        self.lane: Lane = lane
        #: The SIP Call-ID of the PBX's call (logs), the codec it sends and where its RTP comes from (the SDP).
        self.call_id = call_id
        self.codec = codec
        self.remote = remote
        self.dropped_seconds = 0.0
        self._max_samples = int(max_backlog * LIVE_RATE)
        self._frames: deque[AudioFrame] = deque()
        self._samples = 0
        self._ready = asyncio.Event()
        self._ended = asyncio.Event()
        self._closed = False
        #: Set by the SIP side once the call exists: ends it from our side (blocking; run off the loop).
        self._hang_up: Callable[[], None] = lambda: None
        self._thread: threading.Thread | None = None
        self._counters: LaneCounters | None = None

    @property
    def ended(self) -> bool:
        """Whether the call is over (every frame already received is still read out)."""
        return self._ended.is_set()

    @property
    def counters(self) -> LaneCounters | None:
        """The lane's packet counters (lost, late, gaps...), once the call is over."""
        return self._counters

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._read()

    async def _read(self) -> AsyncIterator[AudioFrame]:
        while True:
            while self._frames:
                frame = self._frames.popleft()
                self._samples -= len(frame.pcm) // 2
                yield frame
            if self._ended.is_set():
                return
            self._ready.clear()
            await self._ready.wait()

    async def hang_up(self) -> None:
        """End the call from our side (BYE) and wait until its thread and socket are gone. Idempotent."""
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._hang_up)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Until the call is over and its receiving thread has ended (its socket closed)."""
        await self._ended.wait()
        thread = self._thread
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join)

    # Called on the event loop, posted by the call's receiving thread.
    def _deliver(self, frames: list[AudioFrame]) -> None:
        for frame in frames:
            self._frames.append(frame)
            self._samples += len(frame.pcm) // 2
        while self._samples > self._max_samples and len(self._frames) > 1:
            old = self._frames.popleft()
            self._samples -= len(old.pcm) // 2
            self.dropped_seconds += old.seconds
        self._ready.set()

    def _end(self, counters: LaneCounters) -> None:
        self._counters = counters
        self._closed = True
        self._ended.set()
        self._ready.set()


class _LaneFeed:
    """The thread side of one lane: packets into its assembler, frames batched across to the event loop."""

    def __init__(self, call: TappedCall, loop: asyncio.AbstractEventLoop, settings: LiveSettings) -> None:
        self.call = call
        self.loop = loop
        self.assembler = LaneAssembler(call.lane, window=settings.jitter_window, max_gap=settings.max_gap)
        self._batch: list[AudioFrame] = []
        self._batched = 0

    def packet(self, data: bytes) -> None:
        packet = parse_rtp(data)
        if packet is None:
            self.assembler.counters.ignored += 1
            return
        self._add(self.assembler.push(packet))
        if self._batched >= BATCH_SECONDS * LIVE_RATE:
            self._post()

    def quiet(self) -> None:
        """Nothing came for a while: hand out what waits (the window's held audio, the batch)."""
        self._add(self.assembler.flush())
        self._post()

    def end(self) -> None:
        self.quiet()
        counters = self.assembler.counters
        self._safe_post(self.call._end, counters)

    def _add(self, frames: list[AudioFrame]) -> None:
        self._batch += frames
        self._batched += sum(len(f.pcm) // 2 for f in frames)

    def _post(self) -> None:
        if self._batch:
            self._safe_post(self.call._deliver, self._batch)
            self._batch, self._batched = [], 0

    def _safe_post(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody is listening any more
            self.loop.call_soon_threadsafe(callback, *args)


class _TapRtpClient(RTP.RTPClient):
    """pyVoIP's RTP client, receiving only, the raw payload of each packet into our lane feed (module docstring)."""

    def __init__(self, *args: Any, feed: _LaneFeed, bind_host: str, allowed: frozenset[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feed = feed
        self.bind_host = bind_host
        self.allowed = allowed
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind the lane's port and start its one receiving thread (pyVoIP's also starts a transmitter: not ours)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.bind_host, self.inPort))
            sock.settimeout(POLL_SECONDS)
        except OSError:
            sock.close()
            raise
        self.sin = self.sout = sock
        self.thread = threading.Thread(target=self.recv, name=f"cti-live-rtp-{self.feed.call.tap_id}-"
                                       f"{self.feed.call.lane}", daemon=True)
        self.feed.call._thread = self.thread
        self.thread.start()

    def stop(self) -> None:
        """Ask the thread to end: it closes its own socket within :data:`POLL_SECONDS` and posts the lane's end."""
        self.NSD = False

    def recv(self) -> None:
        sock = self.sin
        try:
            while self.NSD:
                try:
                    data, (host, _port) = sock.recvfrom(MAX_PACKET + 1)
                except TimeoutError:
                    self.feed.quiet()
                    continue
                except OSError:
                    break
                if host in self.allowed:
                    self.feed.packet(data)
        except Exception:
            log.exception("live tap %s %s: the audio thread failed", self.feed.call.tap_id, self.feed.call.lane)
        else:
            self._drain(sock)
        finally:
            sock.close()
            self.feed.end()

    def _drain(self, sock: socket.socket) -> None:
        """The call ended (a BYE, or our hang-up): take what already waits in the socket before closing it.

        The PBX sends its BYE after its last packets, but this thread may be behind (a loaded machine: the packets sit
        in the kernel's buffer while the SIP thread already handled the BYE); those packets are the call's last words,
        not something to throw away. Bounded: at most :data:`DRAIN_PACKETS`, so a flood cannot hold the thread.
        """
        try:
            sock.setblocking(False)
            for _ in range(DRAIN_PACKETS):
                try:
                    data, (host, _port) = sock.recvfrom(MAX_PACKET + 1)
                except (BlockingIOError, InterruptedError):
                    return
                if host in self.allowed:
                    self.feed.packet(data)
        except OSError:
            return


class _TapVoipCall(VoIPCall):
    """pyVoIP's call, with our RTP client, no 1 s answering timer, our BYE, and its port given back at the end."""

    def __init__(self, phone: _TapPhone, request: SIP.SIPMessage, session_id: int, *,
                 make_feed: Callable[[], _LaneFeed], allowed: frozenset[str]) -> None:
        self._make_feed = make_feed
        self._allowed = allowed
        self._tap_sip: _TapSipClient = phone.sip
        self._ports: list[int] = []
        self._lock = threading.Lock()
        self.feed: _LaneFeed | None = None
        super().__init__(phone, CallState.RINGING, request, session_id, phone.myIP, sendmode="recvonly")

    def create_rtp_clients(self, codecs: dict[int, RTP.PayloadType], ip: str, port: int, request: SIP.SIPMessage,
                           baseport: int) -> None:
        self._ports.append(port)
        if self.RTPClients or not request.body.get("c"):
            return  # one audio stream per tap call: a second m= line or c= address is not listened to
        self.feed = self._make_feed()
        remote = request.body["c"][0]["address"]
        client = _TapRtpClient(codecs, ip, port, remote, baseport, self.sendmode, feed=self.feed,
                               bind_host=self._tap_sip.bind_host, allowed=self._allowed | {remote})
        self.RTPClients.append(client)

    def renegotiate(self, request: SIP.SIPMessage) -> None:
        """A re-INVITE or a retransmitted INVITE (our 200 OK lost): the same answer again, nothing restarted."""
        media = {client.inPort: client.assoc for client in self.RTPClients}
        answer = self.sip.gen_answer(request, self.session_id, media, self.sendmode)
        self._tap_sip.send(answer.encode("utf-8"))

    def hangup(self) -> None:
        with self._lock:
            if self.state != CallState.ANSWERED:
                return
            self.state = CallState.ENDED
        for client in self.RTPClients:
            client.stop()
        self._tap_sip.send_bye(self.request)
        self.phone.calls.pop(self.call_id, None)
        self.phone.release_ports(call=self)

    def bye(self) -> None:
        with self._lock:
            self.state = CallState.ENDED
        for client in self.RTPClients:
            client.stop()
        self.phone.calls.pop(self.call_id, None)
        self.phone.release_ports(call=self)


class _TapSipClient(SIP.SIPClient):
    """pyVoIP's SIP client with our socket loop, registration and BYE (module docstring)."""

    def __init__(self, phone: _TapPhone, settings: LiveSettings, secret: str, server_ip: str,
                 on_state: Callable[[RegistrationState], None]) -> None:
        super().__init__(server_ip, settings.server_port, settings.username, secret, phone=phone,
                         myIP=settings.contact_host, myPort=settings.sip_port, callCallback=phone.callback,
                         fatalCallback=lambda: None)
        self.settings = settings
        self.bind_host = settings.bind_host
        self.server_ip = server_ip
        self.on_state = on_state
        self.state = RegistrationState()
        self.registration = Registration(settings.server, settings.server_port, settings.username, secret,
                                         settings.contact_host, settings.sip_port, expires=settings.register_expires)
        self._responses: deque[SipResponse] = deque(maxlen=16)
        self._response_came = threading.Condition()
        self._stopping = threading.Event()
        self._send_lock = threading.Lock()
        self._bye_cseq = 0
        self._threads: list[threading.Thread] = []

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    def start(self) -> None:
        """Bind the SIP port, then start the receiving and the registering threads (returns at once)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.bind_host, self.settings.sip_port))
        except OSError:
            sock.close()
            raise
        self.s = self.out = sock
        self.NSD = True
        for target, name in ((self.recv_loop, "cti-live-sip"), (self._register_loop, "cti-live-register")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Unregister (one try, briefly), end both threads, close the socket. Blocking: run it off the loop."""
        if not self.NSD:
            return
        self._stopping.set()
        with self._response_came:
            self._response_came.notify_all()
        self._threads[1].join()
        if self.state.registered:
            with contextlib.suppress(Exception):  # best effort: the binding runs out by itself anyway
                self._register_once(expires=0, timeout=min(self.settings.register_timeout, 2.0))
        self.NSD = False
        self._threads[0].join()
        self.s.close()

    def send(self, data: bytes) -> None:
        with self._send_lock:
            self.s.sendto(data, (self.server_ip, self.settings.server_port))

    # pyVoIP's own sends go through ``out.sendto(..., (server, port))``: the same socket and address as ours.

    def recv_loop(self) -> None:
        """Read every datagram: responses to our REGISTER to the registering thread, requests to pyVoIP's dispatch
        (INVITE, BYE, CANCEL, ACK), OPTIONS answered here; anything not from the PBX, or not SIP, dropped."""
        sock = self.s
        while self.NSD:
            try:
                ready, _, _ = select.select([sock], [], [], POLL_SECONDS)
                if not ready:
                    continue
                raw, (host, _port) = sock.recvfrom(65536)
            except (OSError, ValueError):
                if not self.NSD:
                    return
                continue
            if host != self.server_ip:
                continue
            try:
                self._dispatch(raw)
            except Exception:
                log.warning("live tap: a SIP message from the PBX could not be handled", exc_info=True)

    def _dispatch(self, raw: bytes) -> None:
        response = parse_response(raw)
        if response is not None:
            if response.call_id == self.registration.call_id:
                with self._response_came:
                    self._responses.append(response)
                    self._response_came.notify_all()
            return  # the answer to our BYE, a late retransmission: nothing to do
        method = request_method(raw)
        if method is None:
            return
        if method == "OPTIONS":
            answer = response_to(raw, 200, "OK")
            if answer is not None:
                self.send(answer)
        elif method in ("INVITE", "BYE", "CANCEL", "ACK"):
            self.parse_message(SIP.SIPMessage(raw))
        else:
            answer = response_to(raw, 405, "Method Not Allowed")
            if answer is not None:
                self.send(answer)

    def _transaction(self, request: bytes, timeout: float) -> SipResponse:
        """Send one REGISTER and wait for its final answer (by CSeq; provisional ones skipped)."""
        cseq = self.registration.cseq
        with self._response_came:
            self._responses.clear()
        self.send(request)
        deadline = time.monotonic() + timeout
        with self._response_came:
            while True:
                while self._responses:
                    response = self._responses.popleft()
                    if response.cseq == (cseq, "REGISTER") and response.status >= 200:
                        return response
                left = deadline - time.monotonic()
                if left <= 0 or (self._stopping.is_set() and not self.state.registered):
                    raise TimeoutError(f"no answer from {self.settings.server}:{self.settings.server_port} within "
                                       f"{timeout:g} s")
                self._response_came.wait(min(POLL_SECONDS, left))

    def _register_once(self, *, expires: int | None = None, timeout: float | None = None) -> int:
        """One registration (``expires=0``: its removal); returns the seconds granted. Raises with the reason in words
        when refused or unheard."""
        timeout = timeout or self.settings.register_timeout
        response = self._transaction(self.registration.request(expires=expires), timeout)
        if response.status in (401, 407):
            proxy = response.status == 407
            header = response.headers.get("proxy-authenticate" if proxy else "www-authenticate", "")
            challenge: Challenge | None = parse_challenge(header)
            if challenge is None:
                raise PermissionError(f"the PBX asks for an authentication we do not speak: {header[:80]!r}")
            response = self._transaction(
                self.registration.request(authorization=self.registration.answer(challenge), proxy=proxy,
                                          expires=expires), timeout)
            if response.status in (401, 403, 407):
                raise PermissionError(f"the PBX refused the tap's user {self.settings.username!r} and secret "
                                      f"({response.status} {response.reason})")
        if response.status != 200:
            raise ConnectionError(f"the PBX answered {response.status} {response.reason}")
        return granted_expiry(response.headers.get("expires"), response.headers.get("contact"),
                              self.registration.expires)

    def _register_loop(self) -> None:
        """Register, refresh before the binding runs out, and after a failure try again after a back-off, forever."""
        state = self.state
        while not self._stopping.is_set():
            state.attempts += 1
            try:
                granted = self._register_once()
            except Exception as exc:
                state.failures += 1
                state.registered = False
                state.last_error = str(exc) or type(exc).__name__
                delay = backoff(state.failures, first=self.settings.retry_first_seconds,
                                most=self.settings.retry_max_seconds)
                if state.failures == 1 or state.failures % 10 == 0:
                    log.warning("live tap: registration at %s failed (%s); trying again in %.0f s",
                                self.settings.server, state.last_error, delay)
            else:
                if not state.registered:
                    log.info("live tap: registered at %s:%s as %s", self.settings.server, self.settings.server_port,
                             self.settings.username)
                state.registered, state.failures, state.last_error = True, 0, None
                state.registrations += 1
                state.expires = granted
                delay = max(1.0, granted * 0.8 if granted > 0 else self.settings.register_expires * 0.8)
            self.on_state(dataclasses.replace(state))
            self._stopping.wait(delay)

    def send_bye(self, invite: SIP.SIPMessage) -> None:
        """Our BYE for a call the PBX made to us (``sip_messages.bye_request``)."""
        headers = invite.headers
        call_id = headers["Call-ID"]
        our_tag = self.tagLibrary.get(call_id, "")
        contact = str(headers.get("Contact", "")).strip()
        target = contact[contact.find("<") + 1:contact.find(">")] if "<" in contact else contact.split(";")[0]
        self._bye_cseq += 1
        message = bye_request(
            target=target or f"sip:{headers['From']['address']}",
            from_header=f"{headers['To']['raw']};tag={our_tag}",
            to_header=f"{headers['From']['raw']};tag={headers['From']['tag']}",
            call_id=call_id, cseq=self._bye_cseq, via_host=self.myIP, via_port=self.myPort,
            contact_user=self.username)
        with contextlib.suppress(OSError):  # stopping: the socket is gone, the PBX ends the call by its own timers
            self.send(message)

    def bye(self, request: SIP.SIPMessage) -> None:
        self.send_bye(request)


@dataclass
class _Board:
    """What the SIP thread asks the event loop's side: which taps are expected; where answered calls go."""

    loop: asyncio.AbstractEventLoop
    settings: LiveSettings
    answered: Callable[[TappedCall], None]
    lock: threading.Lock = field(default_factory=threading.Lock)
    expected: set[str] = field(default_factory=set)

    def accepts(self, tap_id: str) -> bool:
        with self.lock:
            return tap_id in self.expected


class _TapPhone(VoIPPhone):
    """pyVoIP's phone with our SIP client, INVITE handling and port bookkeeping."""

    def __init__(self, settings: LiveSettings, secret: str, server_ip: str, board: _Board,
                 on_state: Callable[[RegistrationState], None]) -> None:
        super().__init__(server_ip, settings.server_port, settings.username, secret, myIP=settings.contact_host,
                         callCallback=lambda call: None, sipPort=settings.sip_port,
                         rtpPortLow=settings.rtp_port_first, rtpPortHigh=settings.rtp_port_last)
        self.sip: _TapSipClient = _TapSipClient(self, settings, secret, server_ip, on_state)
        self.settings = settings
        self.server_ip = server_ip
        self.board = board
        self.recvmode = "recvonly"
        self._next_port = settings.rtp_port_first

    def start(self) -> None:
        self.sip.start()
        self.NSD = True

    def stop(self, failed: bool = False) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(InvalidStateError):
                call.hangup()
        self.sip.stop()
        self.NSD = False

    def _callback_MSG_Invite(self, request: SIP.SIPMessage) -> None:
        call_id = request.headers["Call-ID"]
        known = self.calls.get(call_id)
        if known is not None:
            if known.state == CallState.ANSWERED:
                known.renegotiate(request)
            return
        raw = request.raw
        who = parse_tap_user(request.headers["From"].get("number")) or parse_tap_user(
            request.headers["From"].get("caller"))
        if who is None or not self.board.accepts(who[0]):
            log.warning("live tap: refused a call from %r (no tap expects it)",
                        str(request.headers["From"].get("raw", ""))[:100])
            self._answer_with(raw, 403, "Forbidden")
            return
        codec = _keep_g711(request)
        if codec is None:
            self._answer_with(raw, 488, "Not Acceptable Here")
            return
        tap_id, lane_text = who
        lane: Lane = "agent" if lane_text == "agent" else "customer" if lane_text == "customer" else "mixed"
        self.sip.send(self.sip.gen_ringing(request).encode("utf-8"))  # also makes our To tag
        remote = request.body["c"][0]["address"]
        port = request.body["m"][0]["port"]
        tapped = TappedCall(tap_id, lane, call_id, codec, (remote, port), max_backlog=self.settings.max_backlog)
        call: _TapVoipCall | None = None
        try:
            session = secrets.randbelow(1 << 30) + 1
            call = _TapVoipCall(self, request, session, make_feed=lambda: _LaneFeed(tapped, self.board.loop,
                                                                                     self.settings),
                                allowed=frozenset({self.server_ip}))
            if len(call.RTPClients) != 1:
                raise ValueError("the INVITE's SDP has no audio stream to listen to")
            tapped._hang_up = call.hangup
            self.calls[call_id] = call
            call.answer()
        except Exception as exc:
            self.calls.pop(call_id, None)
            if call is not None:
                self.release_ports(call=call)
            log.warning("live tap: could not answer tap %s %s (%s)", tap_id, lane, exc)
            self._answer_with(raw, 500, "Server Internal Error", to_tag=self.sip.tagLibrary.get(call_id))
            return
        log.info("live tap: answered tap %s %s (%s from %s:%s)", tap_id, lane, codec, remote, port)
        self.board.loop.call_soon_threadsafe(self.board.answered, tapped)

    def _answer_with(self, raw: bytes, status: int, reason: str, to_tag: str | None = None) -> None:
        message = response_to(raw, status, reason, to_tag=to_tag or secrets.token_hex(6))
        if message is not None:
            self.sip.send(message)

    def request_port(self, blocking: bool = True) -> int:
        """The next free RTP port of the range, round robin (a port just freed is taken last)."""
        first, last = self.settings.rtp_port_first, self.settings.rtp_port_last
        with self.portsLock:
            for step in range(last - first + 1):
                port = first + (self._next_port - first + step) % (last - first + 1)
                if port not in self.assignedPorts:
                    self.assignedPorts.append(port)
                    self._next_port = port + 1
                    return port
        raise NoPortsAvailableError("every RTP port of [live] is in use")

    def release_ports(self, call: VoIPCall | None = None) -> None:
        ports = getattr(call, "_ports", None)
        if not ports:
            return
        with self.portsLock:
            for port in ports:
                if port in self.assignedPorts:
                    self.assignedPorts.remove(port)
            ports.clear()


def _keep_g711(request: SIP.SIPMessage) -> str | None:
    """Narrow the INVITE's offer to what we decode (PCMU, PCMA), in its order; the codec we will get, or None.

    Done before pyVoIP reads the offer: its call warns about (and resets the warnings filters for) any payload
    type it does not know, and we answer only with what :mod:`companion.live.rtp_audio` decodes.
    """
    audio = [m for m in request.body.get("m", []) if m.get("type") == "audio"]
    if not audio or not request.body.get("c"):
        return None
    request.body["m"] = audio[:1]
    media = audio[0]
    kept = [x for x in media.get("methods", []) if str(x).isdigit() and int(x) in (PCMU, PCMA)]
    if not kept:
        return None
    media["methods"] = kept
    media["attributes"] = {x: v for x, v in media.get("attributes", {}).items() if x in kept}
    request.body["c"] = request.body["c"][:1]
    return "PCMU" if int(kept[0]) == PCMU else "PCMA"


class SipTap:
    """The daemon's SIP endpoint for live audio (module docstring for the whole walk).

    Args:
        settings: ``[live]``.
        secret: the SIP password; None: ``settings.resolved_secret()``.
    """

    def __init__(self, settings: LiveSettings, *, secret: str | None = None) -> None:
        self.settings = settings
        self._secret = secret if secret is not None else settings.resolved_secret()
        self.registration = RegistrationState()
        self._registered = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._phone: _TapPhone | None = None
        self._board: _Board | None = None
        self._waiting: dict[tuple[str, str], asyncio.Future[TappedCall]] = {}
        self._arrived: dict[tuple[str, str], TappedCall] = {}
        self._calls: dict[str, list[TappedCall]] = {}
        self._stopped = False
        self._late: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> SipTap:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind the SIP port and start registering (in the background: :meth:`wait_registered` waits for it)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.settings.server, self.settings.server_port, family=socket.AF_INET,
                                       type=socket.SOCK_DGRAM)
        server_ip = str(infos[0][4][0])
        self._board = _Board(loop, self.settings, self._answered)

        def on_state(state: RegistrationState) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._registration_changed, state)

        self._phone = _TapPhone(self.settings, self._secret, server_ip, self._board, on_state)
        self._phone.start()

    async def stop(self) -> None:
        """Hang up every tapped call, unregister, end every thread and close every socket."""
        if self._phone is None or self._stopped:
            return
        self._stopped = True
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(TapClosed("the live tap stopped"))
        calls = [call for group in self._calls.values() for call in group]
        await asyncio.gather(*(call.hang_up() for call in calls), return_exceptions=True)
        await asyncio.to_thread(self._phone.stop)

    @property
    def threads(self) -> list[threading.Thread]:
        """The SIP threads (receiving, registering): what ``stop`` ends."""
        return self._phone.sip.threads if self._phone is not None else []

    def expect(self, tap_id: str) -> None:
        """Answer the PBX's calls naming this tap (any lane) from now on: call before the ``Originate``."""
        assert self._board is not None, "start the tap first"
        with self._board.lock:
            self._board.expected.add(tap_id)

    def forget(self, tap_id: str) -> None:
        """Refuse further calls naming this tap (those answered go on until :meth:`hang_up`)."""
        if self._board is not None:
            with self._board.lock:
                self._board.expected.discard(tap_id)
        for key in [k for k in self._arrived if k[0] == tap_id]:
            del self._arrived[key]

    async def wait_call(self, tap_id: str, lane: Lane) -> TappedCall:
        """The tap's call for a lane, once the PBX has made it and it is answered. Wait under ``asyncio.timeout``:
        a call that does not come (the spy failed) is the daemon's cue to transcribe that call after it ends."""
        key = (tap_id, lane)
        if key in self._arrived:
            return self._arrived.pop(key)
        if self._stopped:
            raise TapClosed("the live tap stopped")
        future: asyncio.Future[TappedCall] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            return await future
        finally:
            self._waiting.pop(key, None)

    async def hang_up(self, tap_id: str) -> None:
        """End every lane of a tap (BYE), refuse its late calls, and wait until its threads and sockets are gone."""
        self.forget(tap_id)
        calls = self._calls.pop(tap_id, [])
        await asyncio.gather(*(call.hang_up() for call in calls))

    def calls_of(self, tap_id: str) -> list[TappedCall]:
        return list(self._calls.get(tap_id, []))

    async def wait_registered(self) -> RegistrationState:
        """Until the PBX has taken the registration (under ``asyncio.timeout``; the retries go on regardless)."""
        await self._registered.wait()
        return self.registration

    async def wait_registration(self, predicate: Callable[[RegistrationState], bool]) -> RegistrationState:
        """Until the registration's state satisfies ``predicate`` (e.g. a number of failed attempts)."""
        while not predicate(self.registration):
            self._state_changed.clear()
            await self._state_changed.wait()
        return self.registration

    def _registration_changed(self, state: RegistrationState) -> None:
        self.registration = state
        if state.registered:
            self._registered.set()
        else:
            self._registered.clear()
        self._state_changed.set()

    def _answered(self, call: TappedCall) -> None:
        if self._stopped or not self._board or not self._board.accepts(call.tap_id):
            task = asyncio.ensure_future(call.hang_up())  # stopped or forgotten meanwhile: end it
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            return
        self._calls.setdefault(call.tap_id, []).append(call)
        future = self._waiting.pop((call.tap_id, call.lane), None)
        if future is not None and not future.done():
            future.set_result(call)
        else:
            self._arrived[(call.tap_id, call.lane)] = call
