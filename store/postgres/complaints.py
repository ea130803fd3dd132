"""Complaints and the e-mail outbox on PostgreSQL: ``store/complaints.py``'s and ``store/outbox.py``'s dialect.

Several nodes share the database. A change reads its complaint ``FOR UPDATE``: a second node changing the same
complaint waits, then finds the revision moved on and is refused (``ComplaintChanged``). The next mail is picked
``FOR UPDATE SKIP LOCKED``: two nodes taking at once get two different mails (or one gets none), never the same one.
"""

from __future__ import annotations

from store.complaints import ComplaintOps as SharedComplaintOps
from store.outbox import OutboxOps as SharedOutboxOps


class ComplaintOps(SharedComplaintOps):
    """The ``store.repository.Complaints`` concern on PostgreSQL."""

    _FOR_UPDATE = " FOR UPDATE"


class OutboxOps(SharedOutboxOps):
    """The ``store.repository.Outbox`` concern on PostgreSQL."""

    _LOCK_NEXT = " FOR UPDATE SKIP LOCKED"
