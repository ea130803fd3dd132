"""Click-to-call a CRM started (issue 16), as the panel's routes hand it to the CRM push.

A CRM's click-to-call (Bitrix24's ``ONEXTERNALCALLSTART``, 1C's API) is an ``Originate`` through AMI
(``Commands.originate_for``): the PBX names the call only once it rings the agent's phone. The CRM already has its
own id for the call (Bitrix24's ``CALL_ID``), and must get that call finished, never a second one registered. So the
route tells the push what to expect: the next outbound call of ``extension`` to ``number`` on ``pbx`` within a
minute is that CRM's, with ``started_by`` (the CRM's fields) as its planner's first state (``cti.crm.Planner``).

The push (``companion/crm/push.py``) implements this; ``ui_bridge`` only knows the protocol (the daemon sets
``PanelServer.crm_calls``), as the package graph asks (``docs/architecture.md``).
"""

from __future__ import annotations

from typing import Any, Protocol

from cti.crm import CrmName


class CrmCallStarts(Protocol):
    def expect(self, crm: CrmName, pbx: str, extension: str, number: str, started_by: dict[str, Any]) -> None:
        """The next outbound call of ``extension`` to ``number`` (compared as the journal normalises numbers) is
        the one ``crm`` started."""
        ...

    def forget(self, crm: CrmName, pbx: str, extension: str, number: str) -> None:
        """The click-to-call ``expect`` announced was refused (the PBX never dialled): the next call of
        ``extension`` to ``number`` is not ``crm``'s, unless it asks again."""
        ...
