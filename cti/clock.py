"""The PBX's clock for an event, shared by the pure models (calls, agents).

Events carry ``Timestamp`` (the PBX's clock, with ``timestampevents = yes``). Our own ``Cti*`` events are
stamped with the local clock; a ``PbxTime`` header (the PBX's clock, read from a Ping answer) relates the
two. An event with neither is placed at its arrival time shifted by the last known offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from asterisk.messages import AmiMessage

from .ami_numbers import EPOCH_END


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
        # Runs for every event: the dict, not the methods around it, and epoch_seconds' checks inline (its
        # reference: a finite float in [0, 1e10) written in ASCII, else no time at all).
        fields = msg.fields
        stamp = fields.get("PbxTime") if msg.event.startswith("Cti") else fields.get("Timestamp")
        t: float | None = None
        if stamp:
            try:
                t = float(stamp)
            except ValueError:
                t = None
            else:
                if not (0.0 <= t < EPOCH_END and stamp.isascii()):  # "nan", "1e400", "١٧٩٥...": not a time
                    t = None
        if t is None:
            t = msg.received_at + self.offset
        elif msg.received_at:
            self.offset = t - msg.received_at
        self._last, self._last_time = msg, t
        return t
