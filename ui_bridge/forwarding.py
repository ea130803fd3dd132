"""Call control for a PBX another node follows (and live audio's requests: its taps and offers are that node's):
the request forwarded over the store's bus to the node that does.

Why: an agent's browser is connected to whichever panel node the load balancer chose, and only the node that
follows a PBX (holds its lease, so has its AMI connection and its live calls) can act on it. The receiving node
checks everything it can (the session, the role, the rate limit, that the user belongs to the PBX, which PBX the
request names) and :meth:`Forwarder.forward` publishes the request, with its user and its PBX, on the channel
``panel.cmd``. Every node hears it; the one that follows that PBX carries it out with its own ``Commands``
(``Commands.run_forwarded``: the control policy checked again against its live calls, as for a request of its
own) and answers on the asking node's own channel ``panel.reply.<node>``. The asking node waits at most
``FORWARD_TIMEOUT`` seconds: then the client gets ``pbx_timeout`` (the action may or may not have been carried out
if the holder was merely slow: the same words as for an AMI action that timed out).

Nothing here decides who may do what: the holder's ``Commands`` does, as for its own clients.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from store.repository import Role, Store, StoreError, User

from . import messages as m
from .commands import Commands, RequestFailed
from .fanout import SUBSCRIBE_RETRY_FIRST, SUBSCRIBE_RETRY_MAX
from .pbxs import PbxHandles

log = logging.getLogger(__name__)

#: The channel requests are forwarded on; each node's answers come on ``REPLIES + node``.
REQUESTS = "panel.cmd"
REPLIES = "panel.reply."
#: How long the asking node waits for the holder's answer (seconds): above the AMI action timeout the holder
#: itself waits for the PBX, so that its own ``pbx_timeout`` reaches the client rather than this one.
FORWARD_TIMEOUT = 12.0


class _UserWire(BaseModel):
    name: str
    role: Role
    extension: str | None = None
    display_name: str | None = None
    pbxs: tuple[str, ...] = ()

    def user(self) -> User:
        return User(name=self.name, role=self.role, extension=self.extension, display_name=self.display_name,
                    pbxs=self.pbxs)


class _Forwarded(BaseModel):
    """A request on its way to the PBX's holder."""

    id: str
    node: str
    pbx: str
    user: _UserWire
    request: dict[str, Any]


class _Answer(BaseModel):
    id: str
    data: dict[str, Any] | None = None
    code: m.ErrorCode | None = None
    message: str = ""


class Forwarder:
    """Both sides of forwarding, for one node: asking (:meth:`forward`) and carrying out for the PBXs it follows."""

    def __init__(self, node: str, store: Callable[[], Store | None], pbxs: PbxHandles, commands: Commands,
                 timeout: float = FORWARD_TIMEOUT) -> None:
        self.node = node
        self._store = store
        self.pbxs = pbxs
        self.commands = commands
        self.timeout = timeout
        self.active = False
        self._waiting: dict[str, asyncio.Future[_Answer]] = {}
        self._carrying_out: set[asyncio.Task[None]] = set()
        #: Requests this node forwarded, carried out for another node, and that got no answer in time.
        self.forwarded = 0
        self.carried_out = 0
        self.timed_out = 0

    async def run(self) -> None:
        """Listen for requests and for answers to this node, until cancelled."""
        store = self._store()
        if store is None:
            raise RuntimeError("forwarding call control needs the store open")
        delay = SUBSCRIBE_RETRY_FIRST
        while True:
            try:
                requests = await store.subscribe(REQUESTS, self._on_request)
                break
            except StoreError as exc:
                log.warning("call control forwarding: cannot subscribe to the store's bus (%s); trying again in "
                            "%.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, SUBSCRIBE_RETRY_MAX)
        try:
            replies = await store.subscribe(REPLIES + self.node, self._on_answer)
            try:
                self.active = True
                await asyncio.Event().wait()
            finally:
                self.active = False
                await replies.close()
        finally:
            await requests.close()
            for task in list(self._carrying_out):
                task.cancel()

    # -- asking ----------------------------------------------------------------------------------------------

    async def forward(self, user: User, request: BaseModel, pbx: str) -> dict[str, object]:
        """Have the node that follows ``pbx`` carry out ``request`` for ``user``; its reply data, or
        ``RequestFailed`` (its refusal, or ``pbx_unavailable`` / ``pbx_timeout`` when nobody answers)."""
        store = self._store()
        if not self.active or store is None:
            raise RequestFailed("pbx_unavailable", f"the PBX {pbx!r} is followed by another node, which this node "
                                                   "cannot reach now; try again in a moment")
        request_id = uuid.uuid4().hex
        answer: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        self.forwarded += 1
        try:
            payload = to_json({"id": request_id, "node": self.node, "pbx": pbx,
                               "user": {"name": user.name, "role": user.role, "extension": user.extension,
                                        "display_name": user.display_name, "pbxs": list(user.pbxs)},
                               "request": request.model_dump(mode="json")}).decode()
            try:
                await store.publish(REQUESTS, payload)
            except StoreError as exc:
                raise RequestFailed("pbx_unavailable", f"the PBX {pbx!r} is followed by another node, which this "
                                                       f"node cannot reach now ({exc})") from None
            try:
                async with asyncio.timeout(self.timeout):
                    got = await answer
            except TimeoutError:
                self.timed_out += 1
                raise RequestFailed("pbx_timeout", f"no node following the PBX {pbx!r} answered within "
                                                   f"{self.timeout:g} s; the action may or may not have been "
                                                   "carried out") from None
        finally:
            self._waiting.pop(request_id, None)
        if got.code is not None:
            raise RequestFailed(got.code, got.message)
        return dict(got.data or {})

    def _on_answer(self, payload: str) -> None:
        try:
            answer = _Answer.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("call control forwarding: an answer does not validate (%s); skipped", exc.errors()[0]["msg"])
            return
        waiting = self._waiting.get(answer.id)
        if waiting is not None and not waiting.done():
            waiting.set_result(answer)

    # -- carrying out for another node -----------------------------------------------------------------------

    def _on_request(self, payload: str) -> None:
        try:
            forwarded = _Forwarded.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("call control forwarding: a request does not validate (%s); skipped", exc.errors()[0]["msg"])
            return
        handle = self.pbxs.get(forwarded.pbx)
        if forwarded.node == self.node or handle is None or not handle.following():
            return  # the node that follows the PBX answers
        task = asyncio.create_task(self._carry_out(forwarded))
        self._carrying_out.add(task)
        task.add_done_callback(self._carrying_out.discard)

    async def _carry_out(self, forwarded: _Forwarded) -> None:
        answer: dict[str, Any] = {"id": forwarded.id}
        try:
            request = m.CLIENT_ADAPTER.validate_python(forwarded.request)
            answer["data"] = await self.commands.run_forwarded(forwarded.user.user(), request)
            self.carried_out += 1
        except ValidationError as exc:
            answer.update(code="bad_message",
                          message=f"the forwarded request does not validate: {exc.errors()[0]['msg']}")
        except RequestFailed as exc:
            answer.update(code=exc.code, message=exc.message)
        except Exception:
            log.exception("call control forwarding: a %s from node %s failed", forwarded.request.get("type"),
                          forwarded.node)
            answer.update(code="internal", message="the node following the PBX failed to carry out the request "
                                                   "(see its log)")
        store = self._store()
        if store is None:
            return
        try:
            await store.publish(REPLIES + forwarded.node, to_json(answer).decode())
        except StoreError as exc:
            log.warning("call control forwarding: cannot answer node %s: %s", forwarded.node, exc)
