"""The script desk: the contact script's runs, kept server-side, driven by the agent's panel and by the PBX.

Why here: the runner (``cti/scripts/runner.py``) is pure; something has to keep each run (the store's
``ScriptRuns``), launch one when an agent answers an inbound call, read the agent's requests (``script.start``,
``script.answer``, ``script.back``, ``script.discard``, ``script.runs``), carry out the effects the runner asks for
and tell the agent's panel (``script.run``, to every tab of theirs, on every node: the fan-out).

- **Launch**: a pipeline subscriber (:meth:`ScriptDesk.on_effect`, its own bounded queue: ``docs/pipeline.md``)
  sees ``CallAnswered``; the first agent to answer an inbound call gets a run of the call's script
  (``[scripts] queues``/``dids``/``default``: ``ui_bridge/script_library.py``), one per agent and call.
- **Registering a call afterwards** (the reports' "register now": ``script.start`` with a ``linkedid``): the call
  must be in the journal on that PBX, inbound, answered and without a contact; the run is the agent's who answered
  it (an agent may register only their own calls; an admin opens the run on that agent's panel, since runs belong to
  an agent and the contact counts for the agent who took the call). The run's context carries the call, so the saved
  contact is linked to it (``contact_calls``) and the call leaves the reports' list of calls with no contact; the
  run's own row has no call (the call is over: nothing to transfer, and a run the agent discarded for that call does
  not block a new one). Pressed twice, the agent's open run of that call is returned.
- **State**: every accepted action saves the runner's state (``state_to_json``) with the revision it read, so a
  reload, a second tab or a restart continues where the agent was, and two tabs answering at once cannot overwrite
  each other (the second gets ``conflict``). A run continues on the script version it started with: the texts of
  the versions are kept in the store, so an edited script and a restart do not strand a run.
- **Transfers**: ``TransferWanted`` is the panel's own transfer (``commands.py``: ``Redirect`` for blind, ``Atxfer``
  for attended, on the run's call), sent as the agent who answered the step. The result is fed back to the run from
  the call's effects: the target's phone answering is ``answered``; its leg ending unanswered, the call ending, or
  no answer within ``[scripts] transfer_timeout`` is ``not_answered``; a transfer the PBX refuses (or a run without a
  call) is ``not_answered`` at once, with a notice. The watch lives on the node that sent the transfer (a run's
  pending transfer found after a restart gets a new watch with a fresh timeout).
- **Reminders**: ``ReminderWanted`` goes to a :class:`ReminderSink`: the panel's reminder desk
  (``ui_bridge/reminders.py``: kept, pushed to the employee, escalated, closed), which the daemon sets; a desk built
  without one (a test) has :class:`CountingReminders`, which logs and counts them and keeps nothing.
- **Contacts**: ``ContactReady`` goes to the contact register (the store's ``save_contact``, with the run's id:
  saving a run twice makes one contact), or to :attr:`ScriptDesk.contacts` when set; a save that fails is logged and
  counted (``unsaved_contacts``), and the draft stays readable from the run's saved state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from cti.effects import CallAnswered, CallEnded, Effect, LegEnded
from cti.phones import normalize_number
from cti.scripts import (
    ContactDraft,
    ContactReady,
    Done,
    Refused,
    ReminderWanted,
    RunContext,
    RunEnded,
    RunState,
    Script,
    TransferWanted,
    answer,
    back,
    discard,
    start,
    state_from_json,
    state_to_json,
)
from store.repository import ScriptRun, ScriptRunChanged, ScriptRunNotFound, Store, StoreError, User

from . import messages as m
from .cards import CardService
from .commands import SCRIPT_REQUESTS, RequestFailed
from .fanout import Fanout
from .outgoing import Messages
from .pbx_access import PbxRefused, named_pbx
from .pbxs import PbxHandles
from .script_library import Library
from .script_view import Notice, run_info
from .settings import ScriptSettings

log = logging.getLogger(__name__)

#: How often the pending transfers' deadlines are checked (a timeout of seconds: a tenth late is fine).
WATCH_TICK_SECONDS = 0.1
#: Carries out the panel's transfer as ``user`` (``Commands.run``): the reply's data, or ``RequestFailed``.
Transfer = Callable[[User, BaseModel], Awaitable[dict[str, object]]]


class ReminderSink(Protocol):
    """Where a run's call-back reminders go (``ui_bridge/reminders.py``'s ``ReminderDesk``)."""

    async def add(self, reminder: ReminderWanted, run: ScriptRun) -> None: ...


@dataclass
class CountingReminders:
    """A sink for a desk without the panel's reminder desk: logs each reminder and counts it; keeps nothing."""

    added: int = 0

    async def add(self, reminder: ReminderWanted, run: ScriptRun) -> None:
        self.added += 1
        log.info("script run #%d: reminder for %s to call %s at %s (not kept: no reminder desk)",
                 run.id, reminder.employee.id, reminder.number, reminder.due)


#: Where a registered contact goes (the contact register's ``save_contact``).
ContactSink = Callable[[ContactDraft, ScriptRun], Awaitable[None]]


@dataclass
class _Watch:
    """A transfer a run waits for: the target's extension on the run's call, until ``deadline`` (monotonic)."""

    run_id: int
    pbx: str
    linkedid: str
    target: str
    deadline: float


@dataclass
class ScriptDesk:
    library: Library
    store: Callable[[], Store | None]
    fanout: Fanout
    messages: Messages
    pbxs: PbxHandles
    settings: ScriptSettings
    #: The panel's transfer (``Commands.run``), set by the daemon.
    transfer: Transfer | None = None
    cards: CardService | None = None
    reminders: ReminderSink = field(default_factory=CountingReminders)
    #: Where a registered contact goes instead of the store's contact register (tests, another register).
    contacts: ContactSink | None = None
    #: ``[directory] repeat_days``: a contact is a repeat one within this many days of an earlier one.
    repeat_days: float = 180.0
    clock: Callable[[], float] = time.time
    timer: Callable[[], float] = time.monotonic
    #: Registered contacts the register could not save (logged).
    unsaved_contacts: int = 0
    _watches: dict[tuple[str, str], _Watch] = field(default_factory=dict)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    _call_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    # -- requests ---------------------------------------------------------------------------------------------

    async def request(self, user: User, request: BaseModel) -> dict[str, object]:
        """``Commands.scripts``: one request of ``user``; the reply's data, or ``RequestFailed``."""
        if not isinstance(request, SCRIPT_REQUESTS):
            raise RequestFailed("bad_message", f"{type(request).__name__} is not a request of the script")
        delegating = user.role == "admin" and isinstance(request, m.ScriptStart) and request.linkedid is not None
        if (user.extension is None and not delegating) or user.role in ("qa", "employee"):
            raise RequestFailed("forbidden", "the contact script is followed from an agent's extension")
        try:
            if isinstance(request, m.ScriptStart) and request.linkedid is not None:
                return await self._register_call(user, request, request.linkedid)
            if isinstance(request, m.ScriptRuns):
                return await self._runs(user)
            if isinstance(request, m.ScriptStart):
                return await self._start_by_hand(user, request)
            if isinstance(request, m.ScriptAnswer):
                if "result" in request.answer:
                    raise RequestFailed("bad_message", "a transfer's result comes from the PBX, not from a client")
                step, value = request.step, request.answer
                return await self._act(user, request.run, lambda s, st, now: answer(s, st, step, value, now))
            if isinstance(request, m.ScriptBack):
                return await self._act(user, request.run, lambda s, st, now: back(s, st, now))
            reason = request.reason
            return await self._act(user, request.run, lambda s, st, now: discard(s, st, reason, now))
        except ScriptRunNotFound as exc:
            raise RequestFailed("not_found", str(exc)) from None
        except ScriptRunChanged:
            raise RequestFailed("conflict", "the run changed meanwhile (another tab?): ask again") from None
        except StoreError as exc:
            raise RequestFailed("internal", f"the store failed: {exc}") from None

    async def _runs(self, user: User) -> dict[str, object]:
        store = self._store()
        runs = [r for r in await store.open_script_runs(agent=user.extension)
                if not user.pbxs or r.pbx in user.pbxs]
        shown = []
        for run in runs:
            loaded = await self._script_of(store, run)
            if loaded is None:
                continue
            script, state = loaded
            self._rewatch(run, state)
            shown.append(self._info(run, script, state).model_dump(mode="json"))
        scripts = [{"name": s.name, "title": s.title} for s in self.library.scripts.values()]
        return {"runs": shown, "scripts": scripts, "default": self.library.default}

    async def _start_by_hand(self, user: User, req: m.ScriptStart) -> dict[str, object]:
        script = self.library.named(req.script)
        if script is None:
            raise RequestFailed("not_found", f"no script {req.script!r}" if req.script else "no script is loaded")
        try:
            pbx = named_pbx(user, list(self.pbxs), req.pbx, what=req.type)
        except PbxRefused as exc:
            raise RequestFailed(exc.code, exc.message) from None
        caller = normalize_number(req.number, self.messages.region) if req.number else None
        contact_id = await self._card_contact(caller, None, pbx)
        assert user.extension is not None
        run, state = await self._begin(script, pbx, user.extension, None, caller, contact_id, req.channel)
        info = self._info(run, script, state)
        self._push(run, info)
        return {"run": info.model_dump(mode="json")}

    async def _register_call(self, user: User, req: m.ScriptStart, linkedid: str) -> dict[str, object]:
        """"Register now": a run for an answered inbound call of the journal with no contact, the answering agent's,
        its context carrying the call (the contact links it). Validated here, at the edge, before anything starts."""
        if req.channel != "phone":
            raise RequestFailed("bad_message", "a call is registered as a phone contact: channel phone")
        script = self.library.named(req.script)
        if script is None:
            raise RequestFailed("not_found", f"no script {req.script!r}" if req.script else "no script is loaded")
        try:
            pbx = named_pbx(user, list(self.pbxs), req.pbx, what=req.type)
        except PbxRefused as exc:
            raise RequestFailed(exc.code, exc.message) from None
        store = self._store()
        call = await store.get_call(linkedid, pbx=pbx)
        if call is None:
            raise RequestFailed("not_found", f"no call {linkedid} in the journal of {pbx}")
        if call.direction != "inbound" or not call.answered or call.answered_by is None:
            raise RequestFailed("bad_message", f"call {linkedid} is not an answered inbound call: only those are "
                                               "registered from the journal")
        agent = call.answered_by
        if user.role != "admin" and agent != user.extension:
            raise RequestFailed("forbidden", f"call {linkedid} was answered by {agent}: an agent registers their "
                                             "own calls")
        contact = await store.registered_contact_of_call(linkedid, pbx=pbx)
        if contact is not None:
            raise RequestFailed("conflict", f"call {linkedid} is registered already: contact #{contact}")
        async with self._lock_of_call(pbx, linkedid):
            for run in await store.open_script_runs(pbx=pbx, agent=agent):
                if linkedid in (run.linkedid, _context_call(run)):
                    loaded = await self._script_of(store, run)
                    if loaded is not None:
                        info = self._info(run, *loaded)
                        self._push(run, info)
                        return {"run": info.model_dump(mode="json"), "agent": agent}
            caller = normalize_number(call.caller, self.messages.region) if call.caller else None
            contact_id = await self._card_contact(caller, linkedid, pbx)
            run, state = await self._begin(script, pbx, agent, None, caller, contact_id, "phone", call=linkedid)
        info = self._info(run, script, state)
        self._push(run, info)
        return {"run": info.model_dump(mode="json"), "agent": agent}

    async def _act(self, user: User, run_id: int, action: Callable[[Script, RunState, float], Done | Refused]
                   ) -> dict[str, object]:
        async with self._lock(run_id):
            store = self._store()
            run = await store.get_script_run(run_id)
            if run.agent != user.extension or (user.pbxs and run.pbx not in user.pbxs):
                raise RequestFailed("forbidden", "this run is another agent's")
            loaded = await self._script_of(store, run)
            if loaded is None:
                raise RequestFailed("conflict", f"this run follows version {run.version} of the script {run.script!r}, "
                                                "which cannot be read any more: discard it")
            script, state = loaded
            result = action(script, state, self.clock())
            if isinstance(result, Refused):
                refused = {"code": result.code, "message": result.message, "fields": dict(result.fields)}
                return {"refused": refused, "run": self._info(run, script, state).model_dump(mode="json")}
            info = await self._carry_out(user, run, script, result)
            return {"run": info.model_dump(mode="json")}

    # -- the runner's results ---------------------------------------------------------------------------------

    async def _carry_out(self, user: User | None, run: ScriptRun, script: Script, done: Done,
                         notice: Notice = None, detail: str | None = None) -> m.ScriptRunInfo:
        """Save the new state, carry out its effects, tell the agent's tabs; the run as shown now."""
        store = self._store()
        run = await store.save_script_run(run.id, state=state_to_json(done.state), status=done.state.status,
                                          revision=run.revision, at=self.clock())
        state = done.state
        for effect in done.effects:
            if isinstance(effect, TransferWanted):
                failed = await self._send_transfer(user, run, effect)
                if failed is not None:  # no transfer: the script goes on as for a target that did not answer
                    fed = answer(script, state, effect.step, {"result": "not_answered"}, self.clock())
                    if isinstance(fed, Done):
                        return await self._carry_out(user, run, script, fed, "transfer_failed", failed)
            elif isinstance(effect, ReminderWanted):
                try:
                    await self.reminders.add(effect, run)
                except Exception:  # the sink's failure must not lose the run's step: logged, the run goes on
                    log.exception("script run #%d: the reminder could not be handed over", run.id)
            elif isinstance(effect, ContactReady):
                await self._contact(effect.draft, run, state.context.caller)
            elif isinstance(effect, RunEnded):
                log.info("script run #%d closed without a contact (%s)", run.id, effect.draft.status)
        info = self._info(run, script, state, notice, detail)
        self._push(run, info)
        return info

    async def _contact(self, contact: ContactDraft, run: ScriptRun, caller: str | None) -> None:
        """The registered contact into the contact register (the store's ``save_contact``, or :attr:`contacts`)."""
        try:
            if self.contacts is not None:
                await self.contacts(contact, run)
            else:
                await self._store().save_contact(contact, repeat_days=self.repeat_days, run_id=run.id, caller=caller,
                                                 at=self.clock())
        except Exception:  # the run is registered whatever: its draft stays in its saved state, the failure logged
            self.unsaved_contacts += 1
            log.exception("script run #%d: the contact could not be saved in the register", run.id)

    async def _send_transfer(self, user: User | None, run: ScriptRun, wanted: TransferWanted) -> str | None:
        """Send the transfer and watch for its result; why it could not be sent, or None."""
        extension = wanted.employee.extension
        if wanted.linkedid is None or run.linkedid is None:  # by hand: no call, or a call over (registered later)
            return "there is no call to transfer (the run was started by hand)"
        if user is None or self.transfer is None or extension is None:
            return "the transfer cannot be sent from here"
        key = (run.pbx, wanted.linkedid)
        self._watches[key] = _Watch(run.id, run.pbx, wanted.linkedid, extension,
                                    self.timer() + self.settings.transfer_timeout)  # before the PBX can answer
        request = m.Transfer(type="transfer", id=f"script-{run.id}", linkedid=wanted.linkedid, target=extension,
                             mode=wanted.mode, pbx=run.pbx)
        try:
            await self.transfer(user, request)
        except RequestFailed as exc:
            self._watches.pop(key, None)
            return exc.message
        return None

    # -- the PBX ------------------------------------------------------------------------------------------------

    async def on_effect(self, effect: Effect) -> None:
        """The pipeline subscriber: launches on an answered inbound call, and feeds transfers their results."""
        if isinstance(effect, CallAnswered):
            watch = self._watches.get((effect.pbx, effect.linkedid))
            if watch is not None and watch.target == effect.answered_by:
                await self._resolve(watch, "answered")
            elif self.settings.auto_start and watch is None:
                await self._launch(effect)
        elif isinstance(effect, LegEnded):
            watch = self._watches.get((effect.pbx, effect.linkedid))
            if watch is not None and watch.target == effect.agent and not effect.answered:
                await self._resolve(watch, "not_answered")
        elif isinstance(effect, CallEnded):
            record = effect.record
            watch = self._watches.get((record.pbx, record.linkedid))
            if watch is not None:
                await self._resolve(watch, "not_answered")
            await self._call_over(record.pbx, record.linkedid)

    async def _launch(self, effect: CallAnswered) -> None:
        ctx = effect.context
        if ctx is None or ctx.direction != "inbound" or tuple(ctx.agents_answered[:1]) != (effect.answered_by,):
            return  # not a call from outside, or answered after a transfer: its contact is the first agent's
        script = self.library.for_call(ctx.queue, ctx.called)
        if script is None:
            return
        caller = normalize_number(ctx.caller, self.messages.region)
        contact_id = await self._card_contact(caller, effect.linkedid, effect.pbx)
        run, state = await self._begin(script, effect.pbx, effect.answered_by, effect.linkedid, caller, contact_id,
                                       "phone")
        self._push(run, self._info(run, script, state))

    async def _begin(self, script: Script, pbx: str, agent: str, linkedid: str | None, caller: str | None,
                     contact_id: int | None, channel: Any, *, call: str | None = None) -> tuple[ScriptRun, RunState]:
        """A run (``linkedid``: the live call it was launched for, one run per agent and call; ``call``: a finished
        call it registers, in the run's context only)."""
        store = self._store()
        handle = self.pbxs.get(pbx)
        tz = (handle.settings.timezone if handle is not None else "") or "UTC"
        context = RunContext(channel=channel, linkedid=linkedid or call, pbx=pbx, caller=caller, contact_id=contact_id,
                             agent=agent, tz=tz, region=self.messages.region, employees=self.library.employees)
        state = start(script, self.clock(), context)
        run, new = await store.start_script_run(pbx=pbx, agent=agent, linkedid=linkedid, script=script.name,
                                                version=script.version, state=state_to_json(state), at=self.clock())
        if not new:
            loaded = await self._script_of(store, run)
            if loaded is not None:
                script, state = loaded
        return run, state

    async def _card_contact(self, number: str | None, linkedid: str | None, pbx: str) -> int | None:
        """The directory's card the number finds when it finds exactly one (the script's ``context.contact``)."""
        if self.cards is None or not number:
            return None
        try:
            card = await self.cards.card_for(number, linkedid=linkedid, pbx=pbx)
        except (StoreError, OSError) as exc:
            log.warning("script: the card of %s could not be read: %s", number, exc)
            return None
        local = [c for c in card.contacts if c.id is not None]
        return local[0].id if len(local) == 1 else None

    async def _resolve(self, watch: _Watch, result: str) -> None:
        """Feed a watched transfer its result (once: the watch is gone after)."""
        if self._watches.get((watch.pbx, watch.linkedid)) is watch:
            del self._watches[(watch.pbx, watch.linkedid)]
        async with self._lock(watch.run_id):
            store = self._store()
            try:
                run = await store.get_script_run(watch.run_id)
            except ScriptRunNotFound:
                return
            loaded = await self._script_of(store, run)
            if loaded is None:
                return
            script, state = loaded
            if not state.transfer_pending or state.current is None:
                return
            fed = answer(script, state, state.current, {"result": result}, self.clock())
            if isinstance(fed, Refused):
                log.warning("script run #%d: the transfer's result was refused: %s", run.id, fed.message)
                return
            notice: Notice = "transfer_answered" if result == "answered" else "transfer_not_answered"
            await self._carry_out(None, run, script, fed, notice)

    async def _call_over(self, pbx: str, linkedid: str) -> None:
        """The call of open runs ended: their agents' panels show the runs as over (to finish or discard)."""
        store = self.store()
        if store is None:
            return
        for run in await store.open_script_runs(pbx=pbx, linkedid=linkedid):
            loaded = await self._script_of(store, run)
            if loaded is not None:
                self._push(run, self._info(run, *loaded, active=False))

    def _rewatch(self, run: ScriptRun, state: RunState) -> None:
        """A run waiting for a transfer's result nobody watches (the daemon restarted): watched again, a fresh
        timeout."""
        if state.transfer_pending and run.linkedid is not None and (run.pbx, run.linkedid) not in self._watches:
            asked = state.stack[-1].answer or {}
            employee = asked.get("employee")
            target = employee.get("extension") if isinstance(employee, dict) else None
            if isinstance(target, str):
                self._watches[(run.pbx, run.linkedid)] = _Watch(run.id, run.pbx, run.linkedid, target,
                                                                 self.timer() + self.settings.transfer_timeout)

    async def keep_versions(self) -> None:
        """Keep the text of every loaded script's version in the store (a run continues on its version later)."""
        store = self._store()
        for name, script in self.library.scripts.items():
            await store.keep_script_version(name, script.version, self.library.sources[name], at=self.clock())

    async def run(self) -> None:
        """Until cancelled (the daemon's TaskGroup): keep the loaded versions, then time out unanswered transfers."""
        try:
            await self.keep_versions()
        except StoreError as exc:
            log.warning("script: the loaded versions could not be kept: %s", exc)
        while True:
            await asyncio.sleep(WATCH_TICK_SECONDS)
            now = self.timer()
            for watch in [w for w in self._watches.values() if w.deadline <= now]:
                try:
                    await self._resolve(watch, "not_answered")
                except StoreError as exc:
                    log.warning("script run #%d: the transfer's timeout could not be saved: %s", watch.run_id, exc)

    # -- helpers --------------------------------------------------------------------------------------------------

    def _store(self) -> Store:
        store = self.store()
        if store is None:
            raise RequestFailed("internal", "the store is not open yet; try again in a moment")
        return store

    def _lock(self, run_id: int) -> asyncio.Lock:
        lock = self._locks.get(run_id)
        if lock is None:
            if len(self._locks) > 10_000:  # runs come and go: drop the idle locks now and then
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[run_id] = asyncio.Lock()
        return lock

    def _lock_of_call(self, pbx: str, linkedid: str) -> asyncio.Lock:
        """One "register now" of a call at a time on this node: a double click finds the run the first one made."""
        key = (pbx, linkedid)
        lock = self._call_locks.get(key)
        if lock is None:
            if len(self._call_locks) > 1_000:
                self._call_locks = {k: v for k, v in self._call_locks.items() if v.locked()}
            lock = self._call_locks[key] = asyncio.Lock()
        return lock

    async def _script_of(self, store: Store, run: ScriptRun) -> tuple[Script, RunState] | None:
        """The run's script (its own version: loaded now, or read back from the store) and its state."""
        script = self.library.version(run.script, run.version)
        if script is None:
            source = await store.script_source(run.script, run.version)
            script = self.library.remember(source, run.script, run.version) if source is not None else None
        if script is None:
            log.warning("script run #%d follows %s version %s, which is not known", run.id, run.script, run.version)
            return None
        state = state_from_json(script, run.state)
        if isinstance(state, Refused):
            log.warning("script run #%d cannot be restored: %s", run.id, state.message)
            return None
        return script, state

    def _call_active(self, run: ScriptRun) -> bool:
        if run.linkedid is None:
            return False
        handle = self.pbxs.get(run.pbx)
        if handle is not None and handle.following():
            return handle.calls.get(run.linkedid) is not None
        return False

    def _info(self, run: ScriptRun, script: Script, state: RunState, notice: Notice = None,
              detail: str | None = None, *, active: bool | None = None) -> m.ScriptRunInfo:
        return run_info(run, script, state, started_at=self.messages.time(state.started_at),
                        call_active=self._call_active(run) if active is None else active,
                        display=self.messages.numbers, notice=notice, notice_detail=detail)

    def _push(self, run: ScriptRun, info: m.ScriptRunInfo) -> None:
        self.fanout.publish(m.ScriptRun(run=info, pbx=run.pbx), {run.agent}, run.pbx)


def _context_call(run: ScriptRun) -> object:
    """The call in a run's saved context (a run registering a finished call has it there, not in its row)."""
    context = run.state.get("context")
    return context.get("linkedid") if isinstance(context, dict) else None
