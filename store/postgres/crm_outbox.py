"""The CRM outbox on PostgreSQL: ``store/crm_outbox.py``'s dialect.

Several nodes share the database. The next requests are picked ``FOR UPDATE SKIP LOCKED``: two nodes taking at once
get different requests (or one gets none), never the same one; a call's answers are read ``FOR UPDATE`` before the
sent request's answer is merged into them, so two reports for one call never lose one another's values.
"""

from __future__ import annotations

from store.crm_outbox import CrmOutboxOps as SharedCrmOutboxOps


class CrmOutboxOps(SharedCrmOutboxOps):
    """The ``store.repository.CrmOutbox`` concern on PostgreSQL."""

    _CRM_LOCK_NEXT = " FOR UPDATE SKIP LOCKED"
    _CRM_FOR_UPDATE = " FOR UPDATE"
