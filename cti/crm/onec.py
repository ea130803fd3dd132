"""1C's planner (issue 16, ``docs/crm.md`` "1C"): one JSON event per CRM event of a call, pure.

A 1C base learns of calls in one of two ways, or both: an HTTP service of the base (``…/hs/…``) gets each event as a
``POST`` (``companion/crm/onec.py`` sends it with Basic auth), or the base polls ``GET /api/crm/1c/events`` (the pull
feed, ``ui_bridge/routes/crm_onec.py``). Either way the event is the same JSON, and it is the generic webhook's
(``cti/crm/webhook.py``): one documented shape for every system that takes our events as they are, so a 1C developer
and a webhook receiver read the same page, and a key added to one is added to both. Each event carries the outbox's
id (``delivery``, increasing: the pull feed's cursor and what a repeat is recognised by) and its place in the call's
sequence (``seq``).

A call 1C itself started (``POST /api/crm/1c/calls``) comes with ``{"started_by": {"crm": "onec", "request_id":
...}}``: every event of that call carries it, so 1C finds the document it started the call from.
"""

from __future__ import annotations

from . import CrmName
from .webhook import WebhookPlanner


class OneCPlanner(WebhookPlanner):
    """``users``: extension → the 1C user (``[crm.onec] users``: a login or the user's code in the base), sent beside
    each extension as ``user``."""

    name: CrmName = "onec"
