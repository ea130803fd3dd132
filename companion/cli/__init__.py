"""The ``cti`` command: the daemon, the journal, the missed-call register, the replay PBX, the demo.

Every command that reads a config prints a config error as the file, the field and what is wrong,
and exits with status 2; never a traceback. So does any other input that cannot be used as given
(a time, a number, a file, a path): one line saying what and why, exit status 2. A failure of the work
itself (a store that cannot be opened, rows of an import that are wrong, an entry not found) exits with 1.
What is printed comes from callers, agents and files: it goes out as text (:mod:`cti.safe_text`).

One module per command group, each adding its commands to the apps of :mod:`.app`:

* :mod:`.run` — ``run``, ``demo``, ``check-config``;
* :mod:`.listings` — ``calls``, ``agent-misses``, ``missed`` (streamed: a year of calls prints in constant memory);
* :mod:`.register` — ``missed close|reopen|show``, the call-back workflow by hand;
* :mod:`.users` — ``users add|list|passwd|remove|token``;
* :mod:`.contacts` — ``contacts import|export``;
* :mod:`.contacts_register` — ``contacts register``: the contact register, filtered, as a table, JSON or CSV;
* :mod:`.reports` — ``report NAME``: the managers' reports (PBX vs registered, contacts, the funnel, missed calls);
* :mod:`.store_commands` — ``store migrate|copy``: the schema by hand, a site moved to PostgreSQL;
* :mod:`.pbx` — ``replay-pbx``, ``ami-user``, ``schema``.
* :mod:`.transcribe` — ``transcribe``: calls of a period transcribed in bulk, the queue's state.
* :mod:`.models` — ``models list|download``: the speech models installed and offered, a verified download.
* :mod:`.recordings` — ``recordings purge|deleted``: the recordings' retention by hand, and its log.
* :mod:`.mail` — ``mail status|test``: the e-mail outbox's state, a test message through ``[mail]``'s server.
* :mod:`.crm` — ``crm status|retry``: the CRM push's outbox, the requests given up, putting them back.

The shared parts: :mod:`.errors` (one line and an exit status), :mod:`.options`, :mod:`.loading` (the config),
:mod:`.when` (``--since``/``--until``), :mod:`.storage` (the store opened for one command).

Each command's module is imported when that command runs (:func:`main`): ``cti calls`` does not pay for the
daemon's, the demo's or the directory's imports (issue 10: a listing's start-up is a third of its time).
:func:`load` with no command imports them all, in ``cti --help``'s order.
"""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from .app import app

#: The command modules, in the order of ``cti --help``: the daemon first, then what people read.
MODULES = ("run", "listings", "register", "users", "contacts", "contacts_register", "reports", "store_commands", "pbx",
           "transcribe", "models", "recordings", "mail", "crm")
#: The modules that define each command (``missed``'s group is in one, its subcommands in another); a command not
#: named here loads them all (``tests/test_cli_lazy.py`` checks the table against the app).
COMMANDS: dict[str, tuple[str, ...]] = {
    "run": ("run",), "demo": ("run",), "check-config": ("run",),
    "calls": ("listings",), "agent-misses": ("listings",), "missed": ("listings", "register"),
    "users": ("users",), "contacts": ("contacts", "contacts_register"), "report": ("reports",),
    "store": ("store_commands",),
    "replay-pbx": ("pbx",), "schema": ("pbx",), "ami-user": ("pbx",),
    "transcribe": ("transcribe",),
    "models": ("models",),
    "recordings": ("recordings",),
    "mail": ("mail",),
    "crm": ("crm",),
}

__all__ = ["COMMANDS", "MODULES", "app", "load", "main"]


def load(command: str | None = None) -> typer.Typer:
    """The app with ``command``'s commands added to it (every command when None or not a known command)."""
    for name in COMMANDS.get(command or "", MODULES):
        import_module(f"{__name__}.{name}")
    return app


def main() -> None:
    """The console script ``cti`` (pyproject.toml) and ``python -m companion.cli``."""
    load(sys.argv[1] if len(sys.argv) > 1 else None)()
