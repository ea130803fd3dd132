"""The titles of the contact script's reasons, for the rows managers read (the register, the contacts report).

Why: a contact stores its reason as the script's id (``repair_private``) with the script's name and version, so that
editing a script never changes a registered contact; a manager reads the option's title («Интересуется ремонтом —
частник»). The title comes from the script version the contact followed: the script desk keeps the text of every
version it loaded in the store (``ScriptRuns.keep_script_version``), so a version edited away long ago still has its
titles. It is resolved where the rows are built, not in SQL: the HTTP routes and the CLI both call this module, so
their rows stay the same.

* A register row: the title from the contact's own version; the id itself when that version is not kept (a store
  copied without its scripts, a contact saved by another system) or does not name the reason.
* The contacts report groups its rows by reason id across versions and scripts (``store/reports.py``): the title is
  the newest kept version's that has the reason (the script in use now), else the id.

A version's text never changes (its version is derived from its content), so each is read and parsed once per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cti.contacts_register import RegisteredContact
from cti.reports import Report, with_reason_titles
from cti.scripts import Script, load_script
from store.repository import Store


def script_reason_titles(script: Script) -> dict[str, str]:
    """Each reason id of ``script`` with the label of the first option that sets it, in the script's step order."""
    titles: dict[str, str] = {}
    for step in script.steps.values():
        for option in step.options:
            if option.reason is not None:
                titles.setdefault(option.reason, option.label)
    return titles


class ReasonTitles:
    """The reasons' titles of the kept script versions, each version read once (:data:`TITLES` is the process's)."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], dict[str, str]] = {}

    async def of_version(self, store: Store, name: str, version: str) -> Mapping[str, str]:
        """The titles of one version; empty when the store does not keep it (asked again next time: it may be kept
        later) or its text no longer loads as that version."""
        key = (name, version)
        known = self._versions.get(key)
        if known is not None:
            return known
        source = await store.script_source(name, version)
        if source is None:
            return {}
        script = load_script(source, f"{name}@{version}").script
        titles = script_reason_titles(script) if script is not None and script.version == version else {}
        if len(self._versions) > 1_000:  # versions are few; a bound all the same
            self._versions.clear()
        self._versions[key] = titles
        return titles

    async def of_contact(self, store: Store, contact: RegisteredContact) -> str | None:
        """The title of the contact's reason in its own version; the id when unknown; None for no reason."""
        if contact.reason is None:
            return None
        titles = await self.of_version(store, contact.script, contact.version)
        return titles.get(contact.reason, contact.reason)

    async def of_contacts(self, store: Store, contacts: Iterable[RegisteredContact]) -> list[str | None]:
        return [await self.of_contact(store, c) for c in contacts]

    async def newest(self, store: Store) -> dict[str, str]:
        """Every reason id with its title in the newest kept version that has it."""
        titles: dict[str, str] = {}
        for name, version in await store.kept_script_versions():
            for reason, title in (await self.of_version(store, name, version)).items():
                titles.setdefault(reason, title)
        return titles

    async def report(self, store: Store, report: Report) -> Report:
        """``report`` with its reasons' titles (the contacts report's ``reasons``; other reports unchanged)."""
        if report.name != "contacts":
            return report
        return with_reason_titles(report, await self.newest(store))


#: The process's titles (the HTTP routes and the CLI share it).
TITLES = ReasonTitles()
