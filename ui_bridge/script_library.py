"""The scripts folder read at start: every ``*.toml`` loaded and checked, or every problem of every file said.

Why at start and all at once: a mistake in a script must show when the daemon starts (or in ``cti check-config``),
not when an agent is on the phone in the middle of the route that has it. So :func:`load_library` reads every file,
and :class:`ScriptProblems` carries every problem found (``str(problem)``: file, line, step, what is wrong); the
daemon refuses to start with any error. Warnings are logged and the script loads.

The library also picks the script a call launches (``[scripts] default``, ``queues``, ``dids``) and keeps every
version a run may follow: the versions loaded now, and older ones read back from the store's kept texts
(``ScriptRuns.script_source``) when a run started before an edit continues after a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from asterisk.settings import ConfigError
from cti.scripts import Employee, Problem, Script, load_script

from .settings import ScriptSettings

log = logging.getLogger(__name__)

#: At most this many script files in the folder (each at most ``cti.scripts.loader.MAX_SCRIPT_BYTES``).
MAX_FILES = 100


class ScriptProblems(ConfigError):
    """The scripts folder cannot be used: one line per problem (the file, line and step each names)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Library:
    """The loaded scripts by name, their texts, and the versions of runs started earlier (by name and version)."""

    scripts: dict[str, Script] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # name -> the text of the loaded version
    default: str | None = None
    queues: dict[str, str] = field(default_factory=dict)
    dids: dict[str, str] = field(default_factory=dict)
    employees: dict[str, tuple[Employee, ...]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _versions: dict[tuple[str, str], Script] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for script in self.scripts.values():
            self._versions[(script.name, script.version)] = script

    def for_call(self, queue: str | None, did: str | None) -> Script | None:
        """The script a call launches: its queue's, else its DID's, else the default (None: no script)."""
        name = (self.queues.get(queue or "") or self.dids.get(did or "") or self.default)
        return self.scripts.get(name) if name else None

    def named(self, name: str | None) -> Script | None:
        """A loaded script by name (None or empty: the default)."""
        return self.scripts.get(name or self.default or "")

    def version(self, name: str, version: str) -> Script | None:
        """The script of a run: the loaded one if it is that version, else one read back earlier (:meth:`remember`)."""
        return self._versions.get((name, version))

    def remember(self, source: str, name: str, version: str) -> Script | None:
        """Load an older version's kept text; the script if it is that version (kept for the next run of it)."""
        loaded = load_script(source, f"{name}@{version}")
        script = loaded.script
        if script is None or script.name != name or script.version != version:
            return None
        self._versions[(name, version)] = script
        return script


def load_library(settings: ScriptSettings) -> Library:
    """Every script of ``settings.folder`` loaded and checked; raises :class:`ScriptProblems` with every problem."""
    if settings.folder is None:
        return Library(employees=_employees(settings))
    folder = settings.folder
    if not folder.is_dir():
        raise ScriptProblems([f"scripts.folder: {folder}: no such folder"])
    files = sorted(folder.glob("*.toml"))
    if len(files) > MAX_FILES:
        raise ScriptProblems([f"scripts.folder: {folder}: more than {MAX_FILES} script files"])
    errors: list[str] = []
    warnings: list[str] = []
    scripts: dict[str, Script] = {}
    sources: dict[str, str] = {}
    for path in files:
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            errors.append(f"{path}: cannot read: {exc.strerror}")
            continue
        except UnicodeDecodeError:
            errors.append(f"{path}: not UTF-8 text")
            continue
        loaded = load_script(text, str(path))
        errors += [str(p) for p in loaded.problems if not p.warning]
        warnings += [str(p) for p in loaded.problems if p.warning]
        script = loaded.script
        if script is None:
            continue
        if script.name in scripts:
            errors.append(str(Problem(str(path), f"name: {script.name!r} is the name of {scripts[script.name].file} "
                                                 "too (each script needs its own)")))
            continue
        scripts[script.name] = script
        sources[script.name] = text
    default = settings.default or (next(iter(scripts)) if len(scripts) == 1 else "")
    if not scripts and not errors:
        errors.append(f"scripts.folder: {folder}: no script (*.toml) in it")
    for where, name in [("scripts.default", default), *((f"scripts.queues.{q}", n) for q, n in settings.queues.items()),
                        *((f"scripts.dids.{d}", n) for d, n in settings.dids.items())]:
        if scripts and name and name not in scripts:
            errors.append(f"{where}: no script named {name!r} in {folder} (its scripts: {', '.join(sorted(scripts))})")
    if scripts and not default and len(scripts) > 1:
        errors.append(f"scripts.default: the folder {folder} has several scripts ({', '.join(sorted(scripts))}): "
                      "name the one a call launches")
    if errors:
        raise ScriptProblems(errors)
    for warning in warnings:
        log.warning("%s", warning)
    return Library(scripts=scripts, sources=sources, default=default or None, queues=dict(settings.queues),
                   dids=dict(settings.dids), employees=_employees(settings), warnings=warnings)


def _employees(settings: ScriptSettings) -> dict[str, tuple[Employee, ...]]:
    return {name: tuple(Employee(e.id, e.name, e.extension) for e in people)
            for name, people in settings.employees.items()}


def folder_problems(settings: ScriptSettings) -> list[str]:
    """What :func:`load_library` would refuse, as lines (``cti check-config``); empty when the folder loads."""
    try:
        load_library(settings)
    except ScriptProblems as exc:
        return exc.problems
    return []
