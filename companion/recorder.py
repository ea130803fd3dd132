"""Starting a recording the dialplan did not: AMI ``MixMonitor`` on an answered call ``[recording] record`` names.

A subscriber (``Daemon.subscribe``): on ``CallAnswered`` it asks ``cti.recording.wants_recording`` whether the
policy wants the call recorded. If so it waits ``SETTLE_SECONDS`` (a queue's own MixMonitor sets its file name a
few milliseconds *after* the agent's answer: 07-queue-ringall-answered), asks the PBX whether any channel of the
call records already (``Getvar MIXMONITOR_FILENAME``: a dialplan's recording is adopted, never doubled), and
otherwise sends ``MixMonitor`` on the customer's channel with the daemon's file name and options
(``cti.recording.mixmonitor_request``). The PBX then sets ``MIXMONITOR_FILENAME`` on that channel, and the call
model puts the file in the call's journal row as it does for the dialplan's.

Each call is recorded once (a transfer's second answer starts nothing more). A refused or unanswered action is
logged and counted (:attr:`Recorder.failures`, :attr:`Recorder.last_failure`), never fatal: the call goes on
unrecorded. The work of one call runs in its own side task, so a call's wait never delays another's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from asterisk.connection import AmiError, AmiResponse
from asterisk.messages import AmiHeaderError, AmiMessage, action
from asterisk.recording_files import RecordingSettings
from cti.effects import CallAnswered, CallContext, CallEnded
from cti.recording import mixmonitor_request, wants_recording

log = logging.getLogger(__name__)

#: Seconds between the answer and the look at whether the PBX records the call already.
SETTLE_SECONDS = 1.0

SendAction = Callable[[AmiMessage], Awaitable[AmiResponse]]


class Recorder:
    """Starts the daemon's recordings; ``send_to(pbx)`` is that PBX's way of sending an action (None: not followed)."""

    def __init__(self, settings: RecordingSettings, send_to: Callable[[str], SendAction | None],
                 spawn: Callable[[Coroutine[Any, Any, None]], bool], *, settle: float = SETTLE_SECONDS) -> None:
        self.settings = settings
        self.send_to = send_to
        self.spawn = spawn
        self.settle = settle
        #: (pbx, linkedid) of the calls in progress already handled: one recording per call.
        self._handled: set[tuple[str, str]] = set()
        #: MixMonitor actions the PBX accepted, calls found recorded already (adopted), actions that failed
        #: (refused, unanswered, not sendable) and the last failure in words (what the log shows).
        self.started = 0
        self.adopted = 0
        #: Answered calls the policy leaves unrecorded (by the daemon: the dialplan may record them).
        self.skipped = 0
        self.failures = 0
        self.last_failure: str | None = None

    async def on_effect(self, effect: object) -> None:
        if isinstance(effect, CallEnded):
            self._handled.discard((effect.record.pbx, effect.record.linkedid))
            return
        if not isinstance(effect, CallAnswered) or effect.context is None:
            return
        key = (effect.pbx, effect.context.linkedid)
        if key in self._handled:
            return
        if not wants_recording(effect.context, self.settings, recorded=False):
            self.skipped += 1
            return
        self._handled.add(key)
        self.spawn(self._record(effect.context))

    async def _record(self, context: CallContext) -> None:
        send = self.send_to(context.pbx)
        if send is None:
            return
        await asyncio.sleep(self.settle)
        if await self._recorded_already(send, context):
            self.adopted += 1
            log.debug("recording: call %s on %s is recorded by the dialplan", context.linkedid, context.pbx)
            return
        request = mixmonitor_request(context, self.settings.layout)
        if request is None:
            return
        try:
            msg = action("MixMonitor", Channel=request.channel, File=request.file,
                         **({"Options": request.options} if request.options else {}))
        except AmiHeaderError as exc:
            self._failed(context, f"not sendable: {exc}")
            return
        try:
            await send(msg)
        except AmiError as exc:
            self._failed(context, str(exc) or type(exc).__name__)
            return
        self.started += 1
        log.info("recording: started %s on %s (call %s, PBX %s)", request.file, request.channel, context.linkedid,
                 context.pbx)

    async def _recorded_already(self, send: SendAction, context: CallContext) -> bool:
        """Whether a channel of the call has ``MIXMONITOR_FILENAME`` set (a channel gone since: not asked)."""
        for channel in context.channels:
            try:
                answer = await send(action("Getvar", Channel=channel.name, Variable="MIXMONITOR_FILENAME"))
            except (AmiError, AmiHeaderError):
                continue
            if answer.response.get("Value", ""):
                return True
        return False

    def _failed(self, context: CallContext, why: str) -> None:
        self.failures += 1
        self.last_failure = f"call {context.linkedid} (PBX {context.pbx}): {why}"
        log.warning("recording: MixMonitor for call %s on PBX %s failed: %s (the call goes on unrecorded)",
                    context.linkedid, context.pbx, why)
