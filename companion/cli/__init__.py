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
* :mod:`.pbx` — ``replay-pbx``, ``ami-user``, ``schema``.

The shared parts: :mod:`.errors` (one line and an exit status), :mod:`.options`, :mod:`.loading` (the config),
:mod:`.when` (``--since``/``--until``), :mod:`.storage` (the store opened for one command).
"""

from __future__ import annotations

from .app import app

# The order of these imports is the order of ``cti --help``: the daemon first, then what people read.
# isort: off
from . import run, listings, register, users, contacts, pbx
# isort: on

__all__ = ["app", "contacts", "listings", "main", "pbx", "register", "run", "users"]


def main() -> None:
    """The console script ``cti`` (pyproject.toml) and ``python -m companion.cli``."""
    app()
