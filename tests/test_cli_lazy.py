"""``cti CMD`` imports only the modules of CMD (issue 10: a listing's start-up was a third of its time): the table
that says which modules those are must name every command, each with every module that adds to it."""

from __future__ import annotations

import subprocess
import sys

import typer

from companion.cli import COMMANDS, MODULES, load


def _defined_in(app: typer.Typer) -> dict[str, set[str]]:
    """Each command of ``app`` and the modules that add to it (a group's callback and its subcommands)."""
    found: dict[str, set[str]] = {}
    for info in app.registered_commands:
        assert info.callback is not None
        name = info.name or info.callback.__name__.replace("_", "-")
        found.setdefault(name, set()).add(info.callback.__module__)
    for group in app.registered_groups:
        sub = group.typer_instance
        assert group.name is not None and sub is not None
        modules = found.setdefault(group.name, set())
        callback = sub.registered_callback.callback if sub.registered_callback else None
        if callback is not None:
            modules.add(callback.__module__)
        for subcommand in _defined_in(sub).values():
            modules |= subcommand
    return found


def test_every_command_loads_the_modules_that_define_it() -> None:
    defined = _defined_in(load())
    assert set(defined) == set(COMMANDS)
    for name, modules in defined.items():
        assert {m.rsplit(".", 1)[1] for m in modules} == set(COMMANDS[name]), name
    assert {m for ms in COMMANDS.values() for m in ms} == set(MODULES)


def test_a_listing_imports_no_other_command() -> None:
    code = ("import sys; from companion.cli import load; load('calls'); "
            "print(sorted(m for m in sys.modules if m.startswith('companion.cli.') or m.startswith('rich.console')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "companion.cli.listings" in loaded
    for other in ("run", "register", "users", "contacts", "pbx"):
        assert f"companion.cli.{other}'" not in loaded, other
    assert "rich.console" not in loaded
