"""The missed-call register a team shares: claims on a number, call-back results, and their messages.

Why a module of its own: ``commands.py`` carries out call control (AMI actions); what this does is the register's
teamwork, over the store only (``store.repository.SharedRegister``): a supervisor takes a number to call it back
(``missed.claim``), gives it back (``missed.release``) or records what the call-back came to (``missed.result``),
and every ``all`` subscriber of that PBX (admins and QA, on every node: the fan-out) sees it at once
(``missed.claimed``, ``missed.released``, ``missed.result_recorded``). A claim also ends by itself: when a call-back
reaches the customer (the store releases it with the call-back rule and says so in its ``RegisterChange``:
:meth:`Messages.for_register` in ``outgoing.py`` hands the releases here) and after ``[register] claim_minutes``
(:meth:`RegisterDesk.run_expiry`).

Who may: admins (the register's users, ``docs/panel.md``) claim, release and record; QA reads the register and
sees who has which number, never acts; agents do not see the register.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from cti.phones import normalize_number
from store.repository import (
    CallbackResult,
    Claim,
    MissedGroup,
    NothingOpen,
    NumberTaken,
    Store,
    StoreError,
    User,
)

from . import messages as m
from .commands import RequestFailed
from .fanout import Fanout
from .outgoing import Messages
from .pbx_access import PbxRefused, named_pbx
from .settings import RegisterSettings

log = logging.getLogger(__name__)

ReleaseWhy = Literal["released", "result", "call_back", "timeout"]
#: How often the expiry of claims is checked at most (a claim lasts minutes: a few seconds late is fine).
EXPIRY_CHECK_SECONDS = 5.0


class RegisterRefused(Exception):
    """A register request refused: the protocol's error ``code``, a message for developers, and ``by``: who holds
    the number when another user's claim is in the way."""

    def __init__(self, code: m.ErrorCode, message: str, by: str | None = None) -> None:
        super().__init__(message)
        self.code: m.ErrorCode = code
        self.message = message
        self.by = by


def claim_info(messages: Messages, claim: Claim) -> m.ClaimInfo:
    return m.ClaimInfo(pbx=claim.pbx, number=claim.number_key, caller=claim.caller, by=claim.by,
                       by_name=claim.by_name, claimed_at=messages.time(claim.claimed_at),
                       until=messages.time(claim.until))


def result_info(messages: Messages, result: CallbackResult) -> m.CallbackResultInfo:
    return m.CallbackResultInfo(pbx=result.pbx, number=result.number_key, result=result.result,
                                comment=result.comment, by=result.by, at=messages.time(result.at),
                                entries=list(result.entry_ids))


def released(claim: Claim, why: ReleaseWhy) -> m.MissedReleased:
    return m.MissedReleased(number=claim.number_key, by=claim.by, why=why, pbx=claim.pbx)


def group_json(messages: Messages, group: MissedGroup) -> dict[str, Any]:
    """One row of the shared register as ``GET /api/missed/groups`` gives it."""
    return {
        "pbx": group.pbx, "number": group.number_key, "caller": group.caller, "caller_name": group.caller_name,
        "contact_name": group.contact_name, "count": group.count, "first_at": messages.time(group.first_at),
        "last_at": messages.time(group.last_at), "reasons": list(group.reasons),
        "entries": [messages.missed(e).model_dump(mode="json") for e in group.entries],
        "claim": claim_info(messages, group.claim).model_dump(mode="json") if group.claim else None,
        "results": [result_info(messages, r).model_dump(mode="json") for r in group.results],
    }


@dataclass
class RegisterDesk:
    """Carries out ``missed.claim`` / ``missed.release`` / ``missed.result`` and tells every node's clients."""

    store: Callable[[], Store | None]
    messages: Messages
    fanout: Fanout
    #: The ids of the PBXs the daemon knows (what a request's ``pbx`` may name).
    followed: Sequence[str]
    settings: RegisterSettings
    region: str = "RU"
    clock: Callable[[], float] = time.time

    async def request(self, user: User, request: BaseModel) -> dict[str, object]:
        """``commands.Commands.register``: :meth:`run`, its refusals as the WebSocket's errors."""
        if not isinstance(request, m.MissedClaim | m.MissedRelease | m.MissedResult):
            raise RequestFailed("bad_message", f"{type(request).__name__} is not a request of the register")
        try:
            return await self.run(user, request)
        except RegisterRefused as exc:
            raise RequestFailed(exc.code, exc.message, by=exc.by) from None

    async def run(self, user: User, request: m.MissedClaim | m.MissedRelease | m.MissedResult) -> dict[str, object]:
        """One request of ``user``; the reply's data, or ``RegisterRefused``."""
        if user.role != "admin":
            raise RegisterRefused("forbidden", "only admins call missed calls back; QA reads the register")
        try:
            pbx = named_pbx(user, list(self.followed), request.pbx, what=request.type)
        except PbxRefused as exc:
            raise RegisterRefused(exc.code, exc.message) from None
        key = normalize_number(request.number, self.region)
        if key is None:
            raise RegisterRefused("bad_message", "a withheld or unreadable number cannot be called back")
        store = self.store()
        if store is None:
            raise RegisterRefused("internal", "the store is not open yet; try again in a moment")
        try:
            if isinstance(request, m.MissedClaim):
                return await self._claim(store, user, pbx, key)
            if isinstance(request, m.MissedRelease):
                return await self._release(store, user, pbx, key)
            return await self._result(store, user, pbx, key, request)
        except NumberTaken as exc:
            holder = exc.claim.by_name or exc.claim.by
            raise RegisterRefused("conflict", f"{holder} is calling this number back already", by=holder) from None
        except NothingOpen as exc:
            raise RegisterRefused("not_found", str(exc)) from None
        except StoreError as exc:
            raise RegisterRefused("internal", f"the store failed: {exc}") from None

    async def _claim(self, store: Store, user: User, pbx: str, key: str) -> dict[str, object]:
        now = self.clock()
        claim = await store.claim_number(pbx, key, by=user.name, by_name=user.display_name or user.name, at=now,
                                         until=now + self.settings.claim_minutes * 60)
        info = claim_info(self.messages, claim)
        self.fanout.publish(m.MissedClaimed(claim=info), frozenset(), pbx)
        return {"claim": info.model_dump(mode="json")}

    async def _release(self, store: Store, user: User, pbx: str, key: str) -> dict[str, object]:
        claim = await store.release_number(pbx, key, by=user.name, at=self.clock())
        if claim is not None:
            self.fanout.publish(released(claim, "released"), frozenset(), pbx)
        return {"released": claim is not None}

    async def _result(self, store: Store, user: User, pbx: str, key: str, req: m.MissedResult) -> dict[str, object]:
        comment = req.comment.strip() if req.comment else None
        result = await store.record_callback_result(pbx, key, req.result, by=user.name, comment=comment or None,
                                                    at=self.clock())
        info = result_info(self.messages, result)
        self.fanout.publish(m.MissedResultRecorded(result=info), frozenset(), pbx)
        try:  # the call-back is done: the number is free again (someone else's claim stays theirs)
            claim = await store.release_number(pbx, key, by=user.name, at=self.clock())
        except NumberTaken:
            claim = None
        if claim is not None:
            self.fanout.publish(released(claim, "result"), frozenset(), pbx)
        return {"result": info.model_dump(mode="json")}

    async def expire_once(self) -> int:
        """Release the claims whose time is up (each once, whichever node finds it first); how many."""
        store = self.store()
        if store is None:
            return 0
        gone = await store.expire_claims(self.clock())
        for claim in gone:
            self.fanout.publish(released(claim, "timeout"), frozenset(), claim.pbx)
        return len(gone)

    async def run_expiry(self, every: float = EXPIRY_CHECK_SECONDS) -> None:
        """Release expired claims every ``every`` seconds, until cancelled (the panel's background work)."""
        while True:
            try:
                await self.expire_once()
            except StoreError as exc:  # the database is away: the next round tries again
                log.warning("register: expiring claims failed: %s", exc)
            await asyncio.sleep(every)
