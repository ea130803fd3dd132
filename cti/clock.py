"""The PBX's clock for an event, shared by the pure models (calls, agents).

Events carry ``Timestamp`` (the PBX's clock, with ``timestampevents = yes``). Our own ``Cti*`` events are
stamped with the local clock; a ``PbxTime`` header (the PBX's clock, read from a Ping answer) relates the
two. An event with neither is placed at its arrival time shifted by the last known offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from asterisk.messages import AmiMessage

from .ami_numbers import epoch_seconds


@dataclass(slots=True)
class PbxClock:
    """One clock may serve several models (the daemon's call book and agent board share one): each asks the time
    of the same message, and the answer of the last message is kept, so its stamp is read once, not once per
    model. A message is never changed once parsed, so the same object has the same time."""

    offset: float = 0.0  # PBX clock minus local arrival time, from the last stamped event
    _last: AmiMessage | None = None
    _last_time: float = 0.0

    def time_of(self, msg: AmiMessage) -> float:
        if msg is self._last:
            return self._last_time
        t = self._time_of(msg)
        self._last, self._last_time = msg, t
        return t

    def _time_of(self, msg: AmiMessage) -> float:
        fields = msg.fields  # runs for every event: the dict, not the method around it
        stamp = fields.get("PbxTime") if msg.event.startswith("Cti") else fields.get("Timestamp")
        if stamp:
            t = epoch_seconds(stamp)  # "nan", "1e400", "١٧٩٥...": not a time (ami_numbers)
            if t is None:
                return msg.received_at + self.offset
            if msg.received_at:
                self.offset = t - msg.received_at
            return t
        return msg.received_at + self.offset
