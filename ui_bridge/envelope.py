"""The panel's envelopes on the store's bus: what one panel node tells every other (``ui_bridge/fanout.py``).

Why an envelope around the frame: a node that receives a message must know who gets it (its PBX and that PBX's
extensions, as ``Hub.publish`` takes them) without decoding the message itself, and a node that does not follow
the message's PBX keeps a mirror of that PBX's calls and agents (``ui_bridge/mirror.py``), so the envelope of a
call or agent message also carries the state the mirror needs. The frame is encoded once, on the node that built
the message, and travels as it will be sent to the browsers.

On the wire an envelope is two lines: a compact JSON header, ``\\n``, then the frame (empty for an envelope with
no message: a state, a state request). Neither line can hold a raw line break (compact JSON escapes them), so
several envelopes go in one bus message, one after the other (the sender batches what is queued), and the
receiver reads them pair by pair, in order.

Kinds:

* ``msg``: a frame for the clients of ``pbx`` (``None``: no PBX in particular) and of its extensions ``ext``;
  with ``call`` (a call's state now: :class:`CallWire`), ``ended`` (the linkedids of a call that ended) or
  ``agent`` (:func:`agent_wire`) for mirrors.
* ``users``: a frame for the sockets of the people named in ``users`` only, whatever their PBXs (a complaint's
  messages: ``Hub.publish_to_users``). A kind of its own rather than a ``msg`` with one more field, for the nodes of
  the release before it (during a rolling upgrade): they read fields they do not know as absent, so such a ``msg``
  would reach every admin and QA socket connected to them (a ``msg`` for no PBX and no extension); an unknown kind
  does not validate there, and the envelope is skipped and logged
  (``tests/ui_bridge/test_complaint_messages_nodes.py``).
* ``state``: the whole state of a PBX its holder follows (``calls``, ``agents``): mirrors replace theirs.
* ``state.request``: a node that starts asks every holder for its PBXs' state.

The bus carries only what nodes of one installation publish, but it is still a boundary between processes (and
versions, during a rolling upgrade): the header is validated here, the mirror's parts when they are used, and an
envelope that does not validate is logged and skipped, never raised into the bus's delivery.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import to_json

from cti.effects import AgentStateChanged

from . import messages as m

#: The bus channel of the panel's envelopes.
CHANNEL = "panel"
#: The envelope format; a node skips (and logs) envelopes of another version.
VERSION = 1

Kind = Literal["msg", "users", "state", "state.request"]


class BadEnvelope(ValueError):
    """An envelope that cannot be read: skipped, logged by the receiver."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Header(_Strict):
    """An envelope's header. The mirror's parts stay raw until a node that mirrors their PBX reads them."""

    v: int
    node: str
    kind: Kind
    #: The envelope's number among those its node queued (1, 2, ...): the node knows when its own came back.
    seq: int | None = None
    pbx: str | None = None
    ext: list[str] = []
    #: The frame is for every client of ``pbx``, whatever its subscription (``pbx.status``).
    everyone: bool = False
    #: A ``users`` envelope's people: the frame is for their sockets only (by user name: ``Hub.publish_to_users``),
    #: not for a PBX's.
    users: list[str] | None = None
    #: The link of the holder to ``pbx`` (``{"connected": bool, "since": epoch}``), for mirrors: with a
    #: ``pbx.status`` message and with each ``state``.
    link: dict[str, Any] | None = None
    call: dict[str, Any] | None = None
    ended: list[str] | None = None
    agent: dict[str, Any] | None = None
    calls: list[dict[str, Any]] | None = None
    agents: list[dict[str, Any]] | None = None


class CallWire(_Strict):
    """A call's state for mirrors: what a client connecting mid-call is shown (``info``; None once the call is
    no longer in progress), and the agents who see it (``audience``: an agent's snapshot has only their calls)."""

    linkedid: str
    info: m.CallInfo | None
    audience: list[str] = []


#: An agent's state for mirrors: :class:`~cti.effects.AgentStateChanged` itself, its fields as they travel (times as
#: epochs: the receiving node formats them for its clients as it formats its own), its fields checked on arrival.
_AGENT = TypeAdapter(AgentStateChanged)


def agent_wire(state: AgentStateChanged) -> dict[str, Any]:
    """``state`` as it travels (a plain dict: nothing validated on the sending side's hot path)."""
    return dataclasses.asdict(state)


def agent_from_wire(raw: Any) -> AgentStateChanged:
    """An agent's state from an envelope; ``ValidationError`` if it is not one."""
    return _AGENT.validate_python(raw)


def envelope(node: str, kind: Kind, frame: str = "", **fields: Any) -> str:
    """One envelope: its header (``node``, ``kind`` and ``fields``; None fields left out) and its frame."""
    head: dict[str, Any] = {"v": VERSION, "node": node, "kind": kind}
    head.update((k, v) for k, v in fields.items() if v is not None)
    return to_json(head).decode() + "\n" + frame


def envelopes(payload: str) -> Iterator[tuple[Header, str] | BadEnvelope]:
    """The envelopes of one bus message, in order: each its header and frame, or the reason it cannot be read
    (the others are still read)."""
    lines = payload.split("\n")
    if len(lines) % 2:
        yield BadEnvelope(f"a bus message of {len(lines)} lines (envelopes are pairs of lines)")
        return
    for i in range(0, len(lines), 2):
        try:
            header = Header.model_validate_json(lines[i])
        except ValidationError as exc:
            yield BadEnvelope(f"an envelope's header does not validate: {exc.error_count()} error(s), first: "
                              f"{exc.errors()[0]['msg']}")
            continue
        if header.v != VERSION:
            yield BadEnvelope(f"an envelope of version {header.v} from node {header.node} (this node reads {VERSION})")
            continue
        yield header, lines[i + 1]
