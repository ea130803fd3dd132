"""The daemon's AMI client: panoramisk's protocol seam, login, ping watchdog, back-off, resync.

panoramisk 1.4 gives us the ``asyncio.Protocol`` seam (``AMIProtocol``, built through a
``protocol_factory``), but three of its behaviours are wrong for a CTI daemon. Each is fixed here, in our
own subclass, never by patching the installed package:

1. **Per-read decoding.** ``AMIProtocol.data_received`` decodes every TCP read on its own with
   ``errors='ignore'``, so a Cyrillic ``CallerIDName`` whose UTF-8 bytes straddle two reads silently
   loses characters. :class:`CtiAmiProtocol` feeds the raw bytes to our sans-I/O
   :class:`~asterisk.protocol.AmiFramer` (through :class:`~asterisk.protocol.AmiClientProtocol`), which
   decodes a frame only once it is whole. A malformed or oversized frame becomes a
   :class:`~asterisk.messages.FrameError`: logged at WARNING and skipped, never fatal.
2. **Unchecked pings.** ``Manager.ping`` writes a ``Ping`` every few seconds and never looks at the
   answer, so a PBX that hangs (or a half-open TCP connection) goes unnoticed for hours. Our watchdog
   sends a ``Ping`` every ``ping_interval``; no answer within ``ping_timeout`` means the PBX is dead:
   the client logs it, aborts the transport and reconnects.
3. **Re-sent actions.** After a reconnect panoramisk re-sends every action that had no answer
   (``AMIProtocol.close`` → ``Manager.send_awaiting_actions``), which can place an ``Originate`` twice.
   Here no action is ever re-sent by the connection: when the connection drops, every pending action's
   future fails with :class:`AmiConnectionLost`. Only :meth:`AmiClient.send_action` may retry, once, and
   only an action outside :data:`~asterisk.messages.NON_IDEMPOTENT_ACTIONS` (a read such as ``Status``).
   Every action has a timeout (:class:`AmiActionTimeout`).

panoramisk's ``Manager`` is not used: its connect/login/ping/reconnect is a chain of ``call_later`` and
done-callbacks that cannot be cancelled as one unit, and its ``dispatch()`` runs event callbacks as
unordered tasks. :class:`AmiClient` drives ``loop.create_connection(protocol_factory, host, port)``
itself inside one cancellable coroutine (:meth:`AmiClient.run`), and hands every event, in arrival
order, to one synchronous sink (the call model): events, including the items of our own listing
actions (``CoreShowChannel``, ``QueueEntry``, …), since the model reads the resync snapshot through the
same door; responses only resolve action futures. The sink also gets synthetic events, so the pure model
knows where a connection starts and ends and what time the PBX thinks it is:

* ``CtiConnected`` (``Timestamp``, ``Host``, ``Port``): right after a successful login, before any
  other frame of that connection, hence before the resync snapshot;
* ``CtiClock`` (``Timestamp``, ``PbxTime``): the PBX's clock from a Ping's answer, just before the
  snapshot (resync items carry a ``Duration`` but no ``Timestamp``);
* ``CtiDisconnected`` (``Timestamp``, ``Reason``): when a logged-in connection ends, for any reason.

Only the event classes the daemon uses are asked for: ``settings.events`` as the login's ``Events``
mask, or, when ``Filter`` regexes are configured, events off at login, every ``Filter`` added, then
``Events`` turned on (so no event slips through, or is lost, while the filters are half in place).
Then the client reads the PBX's clock and runs the resync actions (``CoreShowChannels``,
``QueueStatus``); the model rebuilds the calls in progress from them without duplicating the ones it
already knows.

This is the only module that imports panoramisk.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from panoramisk.ami_protocol import AMIProtocol

from asterisk.settings import AmiSettings

from .messages import NON_IDEMPOTENT_ACTIONS, AmiHeaderError, AmiMessage, FrameError, action
from .protocol import AmiClientProtocol

log = logging.getLogger(__name__)

Sink = Callable[[AmiMessage], None]

#: Synthetic events given to the sink (never sent by Asterisk).
CTI_CONNECTED = "CtiConnected"
CTI_DISCONNECTED = "CtiDisconnected"
CTI_CLOCK = "CtiClock"

#: ``Response:`` values that mean the action failed.
_FAILED = frozenset({"error", "fail", "failure"})
#: How long a clean shutdown waits for ``Logoff``'s answer and for the socket to close.
_CLOSE_GRACE = 1.0


class AmiError(Exception):
    """Base of the errors an AMI action can end with."""


class AmiNotConnected(AmiError):
    """There is no logged-in connection to send the action on."""


class AmiActionTimeout(AmiError):
    """The PBX did not answer the action in time. It may or may not have been carried out."""


class AmiConnectionLost(AmiError):
    """The connection dropped before the action was answered. The connection never re-sends it."""


class AmiActionFailed(AmiError):
    """The PBX answered ``Response: Error``; :attr:`response` is its answer, ``Message`` included."""

    def __init__(self, response: AmiMessage) -> None:
        self.response = response
        super().__init__(response.get("Message") or f"Response: {response.response}")


@dataclass(slots=True)
class AmiResponse:
    """The answer to one action: the ``Response`` frame and, for a listing action (``EventList:
    start``), the items that followed it, up to but without the ``...Complete`` event."""

    response: AmiMessage
    events: list[AmiMessage] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    """An action on the wire, waiting for its answer."""

    name: str
    future: asyncio.Future[AmiResponse]
    timer: asyncio.TimerHandle
    on_response: Callable[[AmiMessage], None] | None
    response: AmiMessage | None = None
    events: list[AmiMessage] = field(default_factory=list)


def _synthetic(event: str, *pairs: tuple[str, str]) -> AmiMessage:
    now = time.time()
    return AmiMessage.from_pairs([("Event", event), ("Timestamp", f"{now:.6f}"), *pairs], received_at=now)


def _deliver(sink: Sink, msg: AmiMessage) -> None:
    try:
        sink(msg)
    except Exception:  # a bug in one handler must not take the connection down with it
        log.exception("AMI sink failed on %s; message skipped", msg)


class CtiAmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk ships no type hints
    """One AMI connection: bytes in → whole frames → sink / action futures.

    Replaces ``AMIProtocol``'s ``data_received`` (whole-frame decoding, arrival time stamped),
    ``send`` (our serialisation, ActionIDs, one future per action with a timeout, event-list collection)
    and ``close``/``connection_lost`` (pending actions fail with :class:`AmiConnectionLost` instead of
    being queued for re-sending).
    """

    def __init__(self, sink: Sink, *, max_frame_size: int, id_prefix: str = "cti") -> None:
        super().__init__()
        self._sink = sink
        self._ami = AmiClientProtocol(max_frame_size=max_frame_size, id_prefix=id_prefix)
        self._pending: dict[str, _Pending] = {}
        loop = asyncio.get_running_loop()
        self._banner: asyncio.Future[str] = loop.create_future()
        self._lost: asyncio.Future[str] = loop.create_future()
        self._reason: str | None = None
        self.closed = True

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # sets transport, closed=False, version=None, log
        self.log = log

    def data_received(self, data: bytes) -> None:
        ami = self._ami
        ami.receive_data(data, time.time())
        if not self._banner.done() and ami.banner is not None:
            self.version = ami.banner.partition("/")[2].strip()
            self._banner.set_result(ami.banner)
        # Runs for every event of the PBX: the common case (an event no action waits for) goes straight to the
        # sink, as _deliver would, without the calls around it.
        pending = self._pending
        sink = self._sink
        for item in ami.events_received():
            if isinstance(item, FrameError):
                log.warning("%s", item)
            elif item.event:
                if pending and item.action_id in pending:
                    self._on_event(item)
                    continue
                try:
                    sink(item)
                except Exception:  # a bug in one handler must not take the connection down with it
                    log.exception("AMI sink failed on %s; message skipped", item)
            elif item.response:
                self._on_response(item)
            else:
                log.warning("AMI frame with neither Event nor Response skipped: %s", item)

    def eof_received(self) -> bool | None:
        self._ami.receive_eof()
        self.closing("the PBX closed the connection")
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reason = self._reason or (f"connection error: {exc}" if exc else "the PBX closed the connection")
        for action_id, pending in list(self._pending.items()):
            what = f"{pending.name} (ActionID {action_id})"
            self._fail(action_id, AmiConnectionLost(f"AMI connection lost ({reason}) before {what} was answered"))
        if not self._banner.done():
            self._banner.set_exception(AmiConnectionLost(reason))
            self._banner.exception()  # retrieved: nobody may be waiting for it any more
        if not self._lost.done():
            self._lost.set_result(reason)

    # -- actions ------------------------------------------------------------------------------------

    def send(  # our signature, not AMIProtocol.send(data, as_list)
        self,
        message: AmiMessage,
        *,
        timeout: float,
        on_response: Callable[[AmiMessage], None] | None = None,
    ) -> asyncio.Future[AmiResponse]:
        """Write one action and return the future of its answer.

        The future fails with :class:`AmiActionTimeout` after ``timeout`` seconds,
        :class:`AmiActionFailed` on ``Response: Error`` and :class:`AmiConnectionLost` if the connection
        drops first. An action with a line break or NUL in it raises
        :class:`~asterisk.messages.AmiHeaderError` here, before anything is written or awaited: the
        connection goes on as if it had never been asked. ``on_response`` is called synchronously with the
        ``Response`` frame, before any later frame of the same read is handled (login uses it to mark the start
        of the session).
        """
        if self.closed:
            raise AmiNotConnected("the AMI connection is closed")
        loop = asyncio.get_running_loop()
        action_id = self._ami.send_action(message)
        future: asyncio.Future[AmiResponse] = loop.create_future()
        timer = loop.call_later(timeout, self._expire, action_id, timeout)
        self._pending[action_id] = _Pending(message.action or "?", future, timer, on_response)
        future.add_done_callback(lambda _: self._forget(action_id, future))
        for chunk in self._ami.data_to_send():
            self.transport.write(chunk)
        return future

    def closing(self, reason: str) -> None:
        """Record why the connection is about to end; the first reason given is the one reported."""
        self._reason = self._reason or reason

    def close(self) -> None:
        """Close the transport (flushing what is written). Pending actions fail in connection_lost."""
        self.closing("closed by the client")
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection at once: a dead peer will never read what is still buffered."""
        self.closing(reason)
        self.closed = True
        self.transport.abort()

    async def wait_banner(self) -> str:
        """The PBX's greeting line (``Asterisk Call Manager/11.0.0``)."""
        return await asyncio.shield(self._banner)

    async def wait_lost(self) -> str:
        """Wait until the connection is gone; returns why."""
        return await asyncio.shield(self._lost)

    @property
    def close_reason(self) -> str:
        return self._reason or "closed"

    # -- internals ----------------------------------------------------------------------------------

    def _on_event(self, msg: AmiMessage) -> None:
        action_id = msg.action_id
        pending = self._pending.get(action_id) if action_id else None
        self._deliver(msg)
        if pending is not None and pending.response is not None:
            if msg.get("EventList").lower() == "complete":
                self._resolve(action_id, AmiResponse(pending.response, pending.events))
            else:
                pending.events.append(msg)

    def _on_response(self, msg: AmiMessage) -> None:
        action_id = msg.action_id
        pending = self._pending.get(action_id)
        if pending is None:
            log.debug("AMI answer for unknown or expired ActionID %r dropped: %s", action_id, msg)
            return
        if pending.on_response is not None:
            try:
                pending.on_response(msg)
            except Exception:  # the hook's bug costs its own work; the action is still answered
                log.exception("AMI: the hook for the answer to %s failed on %s", pending.name, msg)
        if msg.response.lower() in _FAILED:
            self._fail(action_id, AmiActionFailed(msg))
        elif msg.get("EventList").lower() == "start":
            pending.response = msg  # items follow, up to an event with EventList: Complete
        else:
            self._resolve(action_id, AmiResponse(msg))

    def _deliver(self, msg: AmiMessage) -> None:
        _deliver(self._sink, msg)

    def _resolve(self, action_id: str, answer: AmiResponse) -> None:
        pending = self._pending.pop(action_id)
        pending.timer.cancel()
        if not pending.future.done():
            pending.future.set_result(answer)

    def _fail(self, action_id: str, exc: AmiError) -> None:
        pending = self._pending.pop(action_id)
        pending.timer.cancel()
        if not pending.future.done():
            pending.future.set_exception(exc)

    def _expire(self, action_id: str, timeout: float) -> None:
        pending = self._pending.get(action_id)
        if pending is not None:
            self._fail(
                action_id,
                AmiActionTimeout(f"no answer to {pending.name} (ActionID {action_id}) within {timeout:g} s"),
            )

    def _forget(self, action_id: str, future: asyncio.Future[AmiResponse]) -> None:
        """The caller gave up (cancelled): stop waiting for that answer."""
        pending = self._pending.get(action_id)
        if pending is not None and pending.future is future:
            del self._pending[action_id]
            pending.timer.cancel()


class AmiClient:
    """Keeps one logged-in AMI connection up for the daemon's lifetime.

    ``run()`` connects, logs in (``Events`` = ``settings.events``), adds the ``filters``, runs the
    ``resync_actions`` and watches the connection with pings; when it drops, it reconnects with
    exponential back-off and jitter and does it all again. Events go to ``sink``, in arrival order,
    resync answers included.
    """

    def __init__(
        self,
        settings: AmiSettings,
        sink: Sink,
        *,
        filters: Sequence[str] = (),
        resync_actions: Sequence[str] = ("CoreShowChannels", "QueueStatus"),
    ) -> None:
        self.settings = settings
        self._secret = settings.resolved_secret()  # a missing env variable is a config error: raise now
        self._sink = sink
        self._filters = tuple(filters)
        self._resync_actions = tuple(resync_actions)
        self._where = f"{settings.host}:{settings.port}"
        self._protocol: CtiAmiProtocol | None = None
        self._logged_in = asyncio.Event()
        self._failures = 0
        self._attempts = 0
        #: Why the last attempt or connection failed; ``None`` once logged in.
        self.last_error: str | None = None
        #: Successful logins so far.
        self.connections = 0
        #: True while :meth:`pause_reading` holds the socket.
        self.reading_paused = False

    def pause_reading(self) -> None:
        """Stop reading from the PBX (back-pressure: the consumer of events has fallen behind).

        TCP then holds the PBX's writes; while paused, unanswered pings do not count against the PBX.
        Asterisk drops a client that does not read within its ``writetimeout``: that connection then
        ends, and the next one resyncs, so nothing is lost but time.
        """
        self.reading_paused = True
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            protocol.transport.pause_reading()

    def resume_reading(self) -> None:
        self.reading_paused = False
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            protocol.transport.resume_reading()

    @property
    def connected(self) -> bool:
        """Logged in, and the connection is still open."""
        return self._protocol is not None and self._logged_in.is_set() and not self._protocol.closed

    # The timeouts below are part of the public API (every action has one), hence the noqa.
    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for a logged-in connection; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not self.connected:
                if self._logged_in.is_set():
                    # The socket is gone but run() has not noticed yet: wait for the next login.
                    self._logged_in.clear()
                await self._logged_in.wait()

    async def send_action(self, msg: AmiMessage, *, timeout: float | None = None,  # noqa: ASYNC109
                          on_response: Callable[[AmiMessage], None] | None = None) -> AmiResponse:
        """Send an action on the current connection and wait for its whole answer.

        ``on_response`` is called with the ``Response`` frame synchronously, before any later frame of the same
        read reaches the sink (the daemon feeds a ``Getvar`` answer to the model before the events after it).

        Raises :class:`AmiNotConnected`, :class:`AmiActionTimeout`, :class:`AmiActionFailed` or
        :class:`AmiConnectionLost`; :class:`~asterisk.messages.AmiHeaderError` (nothing sent) for an action
        that could not be written safely. An action outside ``NON_IDEMPOTENT_ACTIONS`` whose connection
        drops is sent once more after the reconnect, within the same ``timeout``; any other is not.
        """
        loop = asyncio.get_running_loop()
        budget = self.settings.action_timeout if timeout is None else timeout
        deadline = loop.time() + budget
        may_retry = msg.action.lower() not in NON_IDEMPOTENT_ACTIONS
        while True:
            protocol = self._protocol
            if protocol is None or not self.connected:
                why = f" ({self.last_error})" if self.last_error else ""
                raise AmiNotConnected(f"not connected to the PBX at {self._where}{why}")
            try:
                return await protocol.send(msg, timeout=max(0.0, deadline - loop.time()), on_response=on_response)
            except AmiConnectionLost:
                if not may_retry:
                    raise
                may_retry = False
                try:
                    await self.wait_connected(max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise AmiActionTimeout(
                        f"no answer to {msg.action}: connection lost and not back within {budget:g} s"
                    ) from None

    async def run(self) -> None:
        """Connect, log in, resync and reconnect until cancelled; on cancel, log off and close.

        Never raises for a PBX that is down, refuses the login or drops the connection: it logs one
        line, keeps :attr:`last_error` and tries again after a back-off that doubles per failed attempt.
        The back-off starts again from ``reconnect_min`` only after a session that stayed up for at least
        ``reconnect_max``: a PBX that accepts the login and drops us at once is not hammered (it gets one login
        per ``reconnect_max`` at most). The cap is low (5 s by default) so that the PBX's return after an outage
        is noticed within seconds, not half a minute: the panel shows the PBX lost until then.
        """
        while True:
            started = time.monotonic()
            logged_in = await self._session()
            if logged_in and time.monotonic() - started >= self.settings.reconnect_max:
                self._failures = 0  # it stayed up: start the back-off again from reconnect_min
            delay = self._next_delay()
            log.info("AMI: next connection attempt to %s in %.2f s", self._where, delay)
            await asyncio.sleep(delay)

    # -- one connection -----------------------------------------------------------------------------

    async def _session(self) -> bool:
        """One connection from connect to loss. Returns whether it logged in. Raises only CancelledError."""
        settings = self.settings
        loop = asyncio.get_running_loop()
        self._attempts += 1
        prefix = f"cti-{self._attempts}"
        try:
            async with asyncio.timeout(settings.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: CtiAmiProtocol(self._sink, max_frame_size=settings.max_frame_size, id_prefix=prefix),
                    settings.host,
                    settings.port,
                )
        except (OSError, TimeoutError) as exc:
            self.last_error = f"cannot connect to AMI at {self._where}: {str(exc) or 'timed out'}"
            log.warning("%s", self.last_error)
            return False
        self._protocol = protocol
        self.reading_paused = False  # a new socket starts reading; the daemon pauses it again if need be
        session_open = False
        try:
            session_open = await self._login(protocol)
            if not session_open:
                await self._close(protocol)
                return False
            async with asyncio.TaskGroup() as tasks:
                watchdog = tasks.create_task(self._watchdog(protocol))
                tasks.create_task(self._after_login(protocol))
                reason = await protocol.wait_lost()
                watchdog.cancel()
            self.last_error = f"AMI connection to {self._where} lost: {reason}"
            log.warning("%s", self.last_error)
            return True
        finally:
            # Normal end: the connection is already gone. Cancelled: log off and close it cleanly.
            if not protocol.closed:
                await self._close(protocol)
            self._logged_in.clear()
            if session_open:
                _deliver(self._sink, _synthetic(CTI_DISCONNECTED, ("Reason", protocol.close_reason)))

    async def _login(self, protocol: CtiAmiProtocol) -> bool:
        settings = self.settings
        try:
            async with asyncio.timeout(settings.connect_timeout):
                banner = await protocol.wait_banner()
        except TimeoutError:
            self.last_error = f"{self._where} sent no AMI greeting within {settings.connect_timeout:g} s"
            log.error("%s", self.last_error)
            return False
        except AmiConnectionLost as exc:
            self.last_error = f"{self._where} closed the connection before greeting: {exc}"
            log.error("%s", self.last_error)
            return False
        if not banner.startswith("Asterisk Call Manager/"):
            log.warning(
                "%s greeted with %r, not an Asterisk Call Manager banner; trying to log in anyway",
                self._where,
                banner,
            )
        # With filters, events stay off until every filter is in place (see _after_login).
        events = "off" if self._filters else settings.events
        try:
            login = action("Login", Username=settings.username, Secret=self._secret, Events=events)
            await protocol.send(login, timeout=settings.action_timeout, on_response=self._on_login_answer)
        except AmiHeaderError as exc:  # e.g. a secret read from a file with its newline: never sent
            self.last_error = f"AMI login not sent: {exc} — check [ami] username, secret (or secret_env) and events"
        except AmiActionFailed as exc:
            self.last_error = (
                f"AMI login refused by {self._where} for user {settings.username!r}: {exc} "
                "— check [ami] username and secret"
            )
        except AmiActionTimeout:
            self.last_error = f"AMI login: no answer from {self._where} within {settings.action_timeout:g} s"
        except AmiConnectionLost as exc:
            self.last_error = f"AMI login: {exc}"
        else:
            log.info("AMI logged in to %s (%s) as %r", self._where, banner, settings.username)
            return True
        log.error("%s", self.last_error)
        return False

    def _on_login_answer(self, response: AmiMessage) -> None:
        """Runs inside data_received, so CtiConnected precedes every event of the new session."""
        if response.response.lower() != "success":
            return
        self.connections += 1
        self.last_error = None
        self._logged_in.set()
        _deliver(
            self._sink,
            _synthetic(CTI_CONNECTED, ("Host", self.settings.host), ("Port", str(self.settings.port))),
        )

    async def _after_login(self, protocol: CtiAmiProtocol) -> None:
        """Filters, events on, the PBX's clock, then the resync snapshot (its items reach the sink).

        Filters are added while events are still off (login said ``Events: off``), then ``Events``
        turns on ``settings.events``: with events on from the login, the events sent before the
        first filter would leak through, and worse, while only some include-filters are in place the
        events that only a later filter admits would be dropped. Since the snapshot is taken after events
        are on, nothing that happened before is lost: it is in the snapshot.

        Resync items carry no time of their own (``CoreShowChannel`` has a ``Duration``), so the model
        dates them with the PBX's clock: a Ping's ``Timestamp``, handed over as ``CtiClock``
        (``PbxTime``) right before the snapshot.
        """
        steps: list[tuple[AmiMessage, Callable[[AmiMessage], None] | None]] = [
            (action("Filter", Operation="Add", Filter=f), None) for f in self._filters
        ]
        if self._filters:
            steps.append((action("Events", EventMask=self.settings.events), None))
        steps.append((action("Ping"), self._on_clock))
        steps += [(action(name), None) for name in self._resync_actions]
        for step, hook in steps:
            try:
                answer = await protocol.send(step, timeout=self.settings.action_timeout, on_response=hook)
            except (AmiConnectionLost, AmiNotConnected):
                return
            except (AmiActionFailed, AmiActionTimeout) as exc:
                if step.action == "Events":  # events would stay off: this session is useless
                    log.error("AMI: the PBX at %s did not turn events on (%s); reconnecting", self._where, exc)
                    protocol.abort(f"Events refused: {exc}")
                    return
                log.warning("AMI %s after login failed: %s", step.action, exc)
            else:
                if answer.events:
                    log.debug("AMI %s: %d items", step.action, len(answer.events))

    def _on_clock(self, response: AmiMessage) -> None:
        if response.response.lower() == "success" and response.get("Timestamp"):
            _deliver(self._sink, _synthetic(CTI_CLOCK, ("PbxTime", response["Timestamp"])))

    async def _watchdog(self, protocol: CtiAmiProtocol) -> None:
        """A Ping every ping_interval; no answer within ping_timeout means the PBX is dead."""
        interval, timeout = self.settings.ping_interval, self.settings.ping_timeout
        while True:
            await asyncio.sleep(interval)
            try:
                await protocol.send(action("Ping"), timeout=timeout)
            except AmiActionTimeout:
                if self.reading_paused:
                    continue  # we are not reading: the answer may well be waiting in the socket
                reason = f"no answer to Ping within {timeout:g} s"
                log.error("AMI: the PBX at %s looks dead (%s); dropping the connection", self._where, reason)
                protocol.abort(reason)
                return
            except AmiActionFailed:
                pass  # an answer, even an error, proves the PBX is alive
            except (AmiConnectionLost, AmiNotConnected):
                return

    async def _close(self, protocol: CtiAmiProtocol) -> None:
        """Log off (briefly waiting for Goodbye), then close the socket and wait until it is closed."""
        protocol.closing("closed by the client")  # not "the PBX closed": it does so after Goodbye
        if self._logged_in.is_set():
            try:
                await protocol.send(action("Logoff"), timeout=_CLOSE_GRACE)
            except AmiError as exc:
                log.debug("AMI Logoff: %s", exc)
        protocol.close()
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                await protocol.wait_lost()
        except TimeoutError:
            protocol.abort("close timed out")

    def _next_delay(self) -> float:
        """Exponential back-off with ±20 % jitter, kept within [reconnect_min, reconnect_max].

        The jitter keeps many daemons from reconnecting in step after a PBX restart, and the ranges
        of successive attempts do not overlap, so the delays grow until they reach the cap.
        """
        low, high = self.settings.reconnect_min, self.settings.reconnect_max
        base = min(high, low * 2.0 ** min(self._failures, 30))
        self._failures += 1
        return min(high, max(low, base * random.uniform(0.8, 1.2)))
