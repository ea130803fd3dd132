"""The static queue members of an Asterisk ``queues.conf``: who the replay PBX knows as a member from the start.

A recorded trace names a member only when something happens to it (``QueueMemberStatus`` when its phone rings, a
``QueueMemberPause``), but a real PBX knows every member of its ``queues.conf`` from boot: ``QueueStatus`` lists them
and ``QueuePause`` of any of them succeeds. ``cti demo`` reads the lab PBX's own file (``pbx-conf/queues.conf`` beside
the traces) so its live replay answers as that PBX would. Only what the demo needs is read: sections and their
``member =>`` lines (``interface,penalty,name,state_interface``), templates skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SECTION = re.compile(r"^\[([^\]]+)\](\(!\))?")


@dataclass(frozen=True, slots=True)
class QueueMemberConf:
    """One ``member =>`` line of a queue."""

    queue: str
    interface: str
    name: str
    penalty: str = "0"
    state_interface: str = ""

    @property
    def device(self) -> str:
        """The device whose state is the member's (``Local/104@agents`` follows ``PJSIP/104``)."""
        return self.state_interface or self.interface


def parse_queues_conf(text: str) -> list[QueueMemberConf]:
    """The static members of every queue of a ``queues.conf`` text, in file order."""
    members: list[QueueMemberConf] = []
    queue: str | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if section := _SECTION.match(line):
            name, template = section[1].strip(), section[2]
            queue = None if template or name == "general" else name
            continue
        key, sep, value = line.partition("=>")
        if not sep or key.strip().lower() != "member" or queue is None:
            continue
        fields = [f.strip() for f in value.split(",")]
        interface = fields[0]
        if not interface:
            continue
        penalty = fields[1] if len(fields) > 1 and fields[1] else "0"
        name = fields[2] if len(fields) > 2 and fields[2] else interface
        state_interface = fields[3] if len(fields) > 3 else ""
        members.append(QueueMemberConf(queue, interface, name, penalty, state_interface))
    return members


def read_queues_conf(path: Path) -> list[QueueMemberConf]:
    """:func:`parse_queues_conf` of a file; a missing file has no members.

    Raises:
        OSError: the file exists and cannot be read.
    """
    if not path.is_file():
        return []
    return parse_queues_conf(path.read_text(encoding="utf-8"))
