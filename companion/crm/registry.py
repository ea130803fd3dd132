"""CRM name → its connector, built from its ``[crm.<name>]`` section (issue 16).

Each CRM lives in a module of its own, ``companion/crm/<name>.py``, whose ``connector(settings, deps)`` builds it
(``companion.crm.connector.ConnectorFactory``). The module is imported only when its section is present, so a daemon
that pushes to Bitrix24 alone never loads the others. A CRM that cannot be built (its module missing, its section
incomplete: no URL, a secret's environment variable unset) is a configuration problem reported in words
(:class:`CrmConfigError`, :func:`build_connectors`' problems), never a crash of the daemon: the other CRMs, and
everything that is not a CRM, go on.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field

from cti.crm import CRM_NAMES, CrmName
from ui_bridge.crm_settings import CrmSettings

from .connector import Connector, ConnectorDeps, ConnectorFactory

log = logging.getLogger(__name__)


class CrmConfigError(ValueError):
    """A CRM's section cannot make a connector (what is missing, in words). A connector's factory raises it."""


@dataclass
class Built:
    """The connectors of the CRMs configured, and the problems of those that could not be built."""

    connectors: dict[CrmName, Connector] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def factory(name: CrmName) -> ConnectorFactory:
    """``companion.crm.<name>.connector``, imported now; ``CrmConfigError`` when there is no such module."""
    if name not in CRM_NAMES:
        raise CrmConfigError(f"[crm.{name}]: not a CRM this daemon knows ({', '.join(CRM_NAMES)})")
    try:
        module = importlib.import_module(f"companion.crm.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"companion.crm.{name}":
            raise  # a module it needs is missing: that is a broken install, said as it is
        raise CrmConfigError(f"[crm.{name}]: this version has no connector for it") from None
    made: ConnectorFactory | None = getattr(module, "connector", None)
    if made is None:
        raise CrmConfigError(f"[crm.{name}]: companion/crm/{name}.py has no connector()")
    return made


def build_connectors(settings: CrmSettings, deps: ConnectorDeps) -> Built:
    """A connector per CRM whose section is present, in ``CRM_NAMES``' order; a CRM that cannot be built is left
    out, its problem said (and logged) instead."""
    built = Built()
    for name in settings.enabled:
        crm: CrmName = name  # type: ignore[assignment]  # enabled lists CRM_NAMES' members only
        try:
            built.connectors[crm] = factory(crm)(getattr(settings, crm), deps)
        except CrmConfigError as exc:
            built.problems.append(str(exc))
        except Exception as exc:  # a connector's own fault while building: the same, with its type
            built.problems.append(f"[crm.{crm}]: cannot start its connector ({type(exc).__name__}: {exc})")
    for problem in built.problems:
        log.error("CRM push: %s; that CRM gets nothing until this is put right", problem)
    return built
