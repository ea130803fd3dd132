"""The least-privilege AMI user for the daemon, as a ``manager.conf`` section an admin pastes on the PBX.

Why it exists: the ``Filter`` action the daemon uses to cut its traffic needs the ``system`` write class,
and ``system`` also lets an AMI client restart Asterisk and ``Originate`` into the ``System`` application
(shell commands on the PBX). Filters written into ``manager.conf`` as ``eventfilter`` lines do the same
job without that power, so the recommended user has no ``system`` at all (docs/security.md).

Asterisk allows an action when the user's ``write`` classes include any one of the action's classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

#: Each action the daemon sends, with the write classes Asterisk accepts for it (any one suffices).
ACTION_CLASSES: Mapping[str, tuple[str, ...]] = {
    "Login": (), "Events": (), "Ping": (), "QueueStatus": (),
    "Filter": ("system",),
    "CoreShowChannels": ("system", "reporting"),
    "Getvar": ("call", "reporting"),
    "Originate": ("originate",),
    "Redirect": ("call",), "Atxfer": ("call",),
    "Hangup": ("system", "call"),
    "QueuePause": ("agent",),
    "MixMonitor": ("system", "call"),  # [recording] record: the daemon's own recordings (docs/recording.md)
}
#: Write classes that cover every action above but ``Filter``: no ``system``.
LEAST_WRITE = ("call", "originate", "agent", "reporting")
#: ``;`` starts a comment in Asterisk's config files; a name must be a plain section name.
_SECTION_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,80}")


def manager_conf_section(username: str, read: str, filters: Iterable[str], permit: str = "127.0.0.1") -> str:
    """The ``[username]`` section: secret placeholder, one permitted address, ``read``, the least ``write``,
    and one ``eventfilter`` line per filter. ValueError for a name or filter that the file cannot hold."""
    if not _SECTION_NAME.fullmatch(username):
        raise ValueError(f"{username!r} cannot be a manager.conf section name (letters, digits, _ . @ -)")
    lines = [
        f"[{username}]",
        "secret = CHANGE-ME                 ; the [ami] secret of the daemon's config",
        "deny = 0.0.0.0/0.0.0.0",
        f"permit = {permit}/255.255.255.255   ; the daemon's machine only",
        f"read = {read}",
        f"write = {','.join(LEAST_WRITE)}   ; no 'system': see docs/security.md",
        "writetimeout = 5000",
    ]
    for expression in filters:
        if any(c in expression for c in ";\r\n\0"):
            raise ValueError(f"the event filter {expression!r} cannot be written into manager.conf")
        lines.append(f"eventfilter = {expression}")
    return "\n".join(lines) + "\n"
