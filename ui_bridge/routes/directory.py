"""The client directory over HTTP: search and create contacts, attach one to a call.

``GET /api/contacts?q=`` finds by number, surname, plate or its digits; ``POST /api/contacts`` creates one;
``POST /api/calls/{linkedid}/contact?pbx=`` attaches a contact to a call, and a call in progress gets a fresh
card (``call.card``) at once. A linkedid is unique only within its PBX: ``?pbx=`` names the call's PBX (one of
the user's); without it, the user's only PBX, else the one of the user's PBXs that has the call (in progress or
in the journal), or 400 when that is not exactly one. Agents attach only to calls their phone is on: that
depends on the call, so it is checked here, after the route's policy (agents and admins write, QA reads) has
admitted the user.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cti import control
from cti.effects import CallContext
from store.repository import ContactNotFound, Store, User

from ..api_models import AttachBody, BadRequest, NewContact, read_model, whole_number
from ..cards import CardService
from ..fanout import Fanout
from ..mirror import MirroredCall
from ..mirror_sync import call_wire
from ..notifier import Notifier
from ..outgoing import contact_info
from ..pbx_access import PbxRefused, named_pbx, visible
from ..pbxs import PbxHandles
from .gate import api_error

#: The 403 of the directory's writes, for QA.
QA_READS_ONLY = "QA users do not edit the directory"
#: The 403 of the directory's writes from a foreign page.
FOREIGN_EDIT = "this origin may not change the directory"


class Directory:
    def __init__(self, store: Callable[[], Store], notifier: Notifier, out: Fanout, cards: CardService | None,
                 pbxs: PbxHandles) -> None:
        self.store = store
        self.notifier = notifier
        self.out = out  # the panel's way to its clients, on every node (ui_bridge/fanout.py)
        self.cards = cards
        self.pbxs = pbxs  # each PBX's calls in progress, as frozen snapshots

    async def search(self, request: Request, user: User) -> Response:
        try:
            limit = whole_number(request.query_params, "limit", 20, 1, 200)
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        found = await self.store().find_contacts(request.query_params.get("q", ""), limit=limit)
        numbers = self.notifier.messages.numbers
        return JSONResponse({"contacts": [contact_info(c, numbers).model_dump() for c in found]})

    async def add(self, request: Request, user: User) -> Response:
        try:
            draft = await read_model(request, NewContact)
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        contact = await self.store().add_contact(draft.contact())
        return JSONResponse({"contact": contact_info(contact, self.notifier.messages.numbers).model_dump()},
                            status_code=201)

    async def attach(self, request: Request, user: User) -> Response:
        """Attach a contact to a call; a call in progress gets a fresh card (``call.card``) at once."""
        try:
            contact_id = (await read_model(request, AttachBody, hint='send JSON {"contact_id": N}: ')).contact_id
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        linkedid = request.path_params["linkedid"]
        try:
            pbx, call = await self._call_of(user, linkedid, request.query_params.get("pbx") or None)
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        # A call in progress on a PBX another node follows: as that node last said (its mirror here).
        mirrored = self._mirrored(pbx, linkedid) if call is None else None
        participants = call.audience if call is not None else mirrored.audience if mirrored is not None else frozenset()
        if not control.may_see_audience(participants, _actor(user)):
            return api_error(403, "forbidden", "agents attach contacts to calls their phone is on")
        try:
            await self.store().attach_call(linkedid, contact_id, by=user.name, pbx=pbx)
        except ContactNotFound as exc:
            return api_error(404, "not_found", str(exc))
        card = None
        if call is not None and self.cards is not None:
            card = self.cards.wire(await self.cards.card_for(call.caller, linkedid=call.linkedid, pbx=pbx))
            self.notifier.remember_card(pbx, call.linkedid, card)  # not if the call ended during the lookup
            self.out.publish(self.notifier.messages.call_card(call.linkedid, card, pbx), participants, pbx,
                             {"call": call_wire(self.notifier, call, card)} if self.out.active else None)
        elif mirrored is not None and self.cards is not None:
            # The node that follows the PBX keeps its own card of the call: the fresh one reaches the call's
            # clients on every node now, and that node's next state of the call carries its own lookup again.
            card = self.cards.wire(await self.cards.card_for(mirrored.info.caller, linkedid=linkedid, pbx=pbx))
            self.out.publish(self.notifier.messages.call_card(linkedid, card, pbx), participants, pbx, None)
        return JSONResponse({"linkedid": linkedid, "pbx": pbx, "contact_id": contact_id,
                             "card": card.model_dump() if card is not None else None})

    def _mirrored(self, pbx: str, linkedid: str) -> MirroredCall | None:
        return self.notifier.mirror.get(pbx, linkedid)

    async def _call_of(self, user: User, linkedid: str, requested: str | None) -> tuple[str, CallContext | None]:
        """The PBX of the call (see the module's docstring) and the call if it is in progress; PbxRefused."""
        followed = list(self.pbxs)
        if requested is not None or len(visible(user, followed)) <= 1:
            pbx = named_pbx(user, followed, requested, what=f"call {linkedid[:80]}")
            call = self.pbxs[pbx].calls.get(linkedid)
            if call is None and self._mirrored(pbx, linkedid) is None and not await self._in_journal(linkedid, pbx):
                raise PbxRefused(404, f"no call {linkedid[:80]!r}: neither in progress nor in the journal")
            return pbx, call
        found: list[tuple[str, CallContext | None]] = []
        for pbx in visible(user, followed):
            call = self.pbxs[pbx].calls.get(linkedid)
            if call is not None or self._mirrored(pbx, linkedid) is not None or await self._in_journal(linkedid, pbx):
                found.append((pbx, call))
        if len(found) == 1:
            return found[0]
        if not found:
            raise PbxRefused(404, f"no call {linkedid[:80]!r} on your PBXs: neither in progress nor in the journal")
        raise PbxRefused(400, f"call {linkedid[:80]} is on several PBXs ({', '.join(p for p, _ in found)}): "
                         "say which with ?pbx=")

    async def _in_journal(self, linkedid: str, pbx: str) -> bool:
        """A call that ended a moment ago may still be staged, not yet written: flushed and looked up again."""
        store = self.store()
        if await store.get_call(linkedid, pbx=pbx) is not None:
            return True
        await store.flush()
        return await store.get_call(linkedid, pbx=pbx) is not None


def _actor(user: User) -> control.Actor:
    return control.Actor(name=user.name, role=user.role, extension=user.extension)
