"""Recorded traces, read once: the events a replay serves and the state the PBX was in at the recording's login.

A trace folder of ``../shared/ami-traces`` holds ``ami.jsonl``: the banner, every message received and every
action the recording runner sent. What a replay serves is the recorded *events* (frames with an ``Event``
header), in order. Left out: the ``Response`` frames and the event-list items (``CoreShowChannel``,
``QueueMember``, …) that answered the runner's own actions, and the runner's ``FullyBooted``/``SuccessfulAuth``
(each session gets its own after login). ``OriginateResponse`` events are kept: they carry the runner's
ActionID, which a client must ignore as unknown. The list items that answered the runner's resync at its login
are kept apart as :attr:`Trace.snapshot`: the PBX's state when the recording began (calls already up, trace 25).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from asterisk.messages import AmiMessage

BANNER = "Asterisk Call Manager/11.0.0"

#: Event-list items that answered the recording runner's resync actions.
_SNAPSHOT_ITEMS = frozenset({"CoreShowChannel", "QueueParams", "QueueMember", "QueueEntry"})
#: The runner's own session events: every client gets fresh ones after its login.
_SESSION_EVENTS = frozenset({"FullyBooted", "SuccessfulAuth"})


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One recorded event and when it arrived, in seconds after the recording's login."""

    t: float
    message: AmiMessage


@dataclass(frozen=True, slots=True)
class Trace:
    """A trace folder, read once: what a replay serves and how the PBX looked at connect."""

    name: str
    banner: str
    #: The events to serve, in recorded order.
    events: list[TraceEvent]
    #: ``CoreShowChannel``/``QueueParams``/``QueueMember``/``QueueEntry`` items answering the runner's
    #: resync at connect (empty unless calls were up when the recording started, e.g. trace 25).
    snapshot: list[AmiMessage]
    #: The PBX's ``Timestamp`` clock at ``t = 0`` (the recording's login).
    epoch0: float

    @property
    def length(self) -> float:
        """Recorded time of the last event."""
        return self.events[-1].t if self.events else 0.0


def load_trace(path: Path) -> Trace:
    """Read a trace folder (or its ``ami.jsonl``) into the events a replay serves.

    Raises:
        ValueError: the folder has no ``ami.jsonl`` or a line of it is not a recorded message.
    """
    file = path if path.is_file() else path / "ami.jsonl"
    if not file.is_file():
        raise ValueError(f"{path}: not an AMI trace folder (no ami.jsonl)")
    banner = BANNER
    rows: list[tuple[float, str, AmiMessage]] = []  # (t, "msg" | "sent", message)
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                t = float(item["t"])
                kind = "sent" if "sent" in item else "msg"
                body = item[kind]
                if isinstance(body, str):
                    banner = body
                    continue
                rows.append((t, kind, AmiMessage(headers=[(str(k), str(v)) for k, v in body])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{file}:{number}: not a recorded AMI message ({exc})") from exc

    runner_actions = {m.action_id: m.action for _, kind, m in rows if kind == "sent" and m.action_id}
    login_ids = {aid for aid, name in runner_actions.items() if name.lower() == "login"}
    t0 = next((t for t, kind, m in rows if kind == "msg" and m.response and m.action_id in login_ids), 0.0)

    events: list[TraceEvent] = []
    snapshot: list[AmiMessage] = []
    epoch0: float | None = None
    for t, kind, msg in rows:
        if kind != "msg":
            continue
        rel = max(0.0, t - t0)
        if epoch0 is None and "Timestamp" in msg:
            epoch0 = msg.time - rel
        name = msg.event
        if not name or name in _SESSION_EVENTS:
            continue
        if msg.action_id in runner_actions and name != "OriginateResponse":
            if name in _SNAPSHOT_ITEMS and not events:
                snapshot.append(msg)
            continue
        events.append(TraceEvent(rel, msg))
    return Trace(name=file.parent.name, banner=banner, events=events, snapshot=snapshot,
                 epoch0=epoch0 if epoch0 is not None else 0.0)

