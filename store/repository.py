"""What the daemon, the CLI and the web panel may ask of the store: domain verbs, no SQL.

``Store`` is the contract, composed of one protocol per concern (the staged writes, the live journal, the call
journal, the missed-call register, panel users and sessions, the client directory, the screen-pop's caller
lookups, the supervisor's alerts), so that a module that needs one concern can be typed against it alone.
``store.open_store`` opens the implementation the settings choose (``store/sqlite/``, or ``store/postgres/`` for
``[store] url``); both pass the same contract tests (``tests/store/``). Nothing outside ``store/`` names an
implementation.

Several PBXs share one store (issue 11): every call, missed entry, agent's miss, live event and attachment carries
the short id of its PBX (``pbx``; ``cti.records.DEFAULT_PBX`` for a single site and for every row an older store
held). A linkedid is unique only within its PBX, so a call is found by the pair; every listing takes ``pbxs``
(None: every PBX, else only those).

Writes from the call model are *staged*: ``stage_event`` and ``stage_call`` only append to memory, so
the AMI event path never waits for a disk. The store's writer task (``run_writer``) commits what is
staged in batches, in staging order; ``flush`` forces that. Reads see committed data only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol, Self, TypeAlias

from cti.alerts import Alert, Condition
from cti.complaints import (
    Attachment,
    Complaint,
    ComplaintChange,
    ComplaintFilter,
    HistoryItem,
    NewComplaint,
    NewMail,
    OutgoingMail,
    Task,
)
from cti.contacts_register import ContactFilter, ContactKey, RegisteredContact
from cti.crm import CrmItem, CrmName, CrmRequest, CrmStatus
from cti.directory import Contact, Query
from cti.email_address import check_email
from cti.qa import AgentScore, QaComment, QaScore
from cti.records import DEFAULT_PBX, AgentMiss, CallRecord, MissedEntry
from cti.reminders import NewReminder, Reminder, ReminderCall
from cti.reports import Report, ReportName, ReportQuery
from cti.scripts.model import Stage
from cti.scripts.runner import ContactDraft
from cti.transcripts import (
    AudioDeletion,
    JobState,
    NewJob,
    Transcript,
    TranscriptHit,
    TranscriptionJob,
    TranscriptQuery,
)
from store.cluster import Cluster

HistoryAction = Literal["opened", "closed", "reopened", "commented"]

#: One event of a call in progress, as ``live_events()`` returns it: linkedid, the AMI headers in
#: their order (duplicates kept), and the time it was received (epoch seconds). Its PBX is the one asked for
#: (``live_events(pbx)``): a daemon rebuilds each PBX it follows from that PBX's own events.
LiveEvent = tuple[str, list[tuple[str, str]], float]


@dataclass(frozen=True, slots=True)
class MissedHistoryItem:
    """One step in the life of a missed entry: the call-back history.

    ``by`` is who acted: the user's name for manual steps, ``"callback"`` / ``"called_again"`` when a
    saved call closed the entry, ``None`` when the PBX opened it. ``linkedid`` is the call involved (the
    missed call for ``opened``, the call-back for an automatic ``closed``).
    """

    entry_id: int
    at: float
    action: HistoryAction
    by: str | None
    linkedid: str | None
    comment: str | None


Role = Literal["agent", "admin", "qa", "integration", "employee"]
ROLES: tuple[Role, ...] = ("agent", "admin", "qa", "integration", "employee")
#: The roles of the panel's users (a browser, a thin client speaking the panel's protocol). ``integration`` is another
#: system (a DMS such as 1C:Alfa-Auto) with an API token: it calls the integration routes only (docs/security.md).
PANEL_ROLES: tuple[Role, ...] = ("agent", "admin", "qa")
#: ``employee``: a master who logs in to see their call-back reminders only (and to call the client back from one):
#: the socket and the reminders' routes admit them, no other route does (docs/security.md).
LOGIN_ROLES: tuple[Role, ...] = (*PANEL_ROLES, "employee")


@dataclass(frozen=True, slots=True)
class User:
    """A panel user. ``password_hash`` is never a password (see ``ui_bridge/auth.py``).

    ``pbxs``: the PBXs the user belongs to (their ids); empty: every PBX, as every user of a single site.
    """

    name: str
    role: Role
    extension: str | None = None
    display_name: str | None = None
    password_hash: str | None = None
    created_at: float = 0.0
    pbxs: tuple[str, ...] = ()
    #: Where the user's notifications go (complaints, issue 15); None: no e-mail. Checked by
    #: ``cti.email_address.check_email`` before it is kept.
    email: str | None = None


def user_email(email: str | None) -> str | None:
    """A user's e-mail address as stored: checked (``cti.email_address.check_email``, raising its ``BadEmail``, a
    ``ValueError``), None for none; ``""`` is none too (how ``update_user`` removes one)."""
    if email is None or not email.strip():
        return None
    return check_email(email)


def user_pbxs(pbxs: Collection[str]) -> tuple[str, ...]:
    """The PBXs of a user as stored: each once, in the order given (a string is one PBX's id, not a collection)."""
    if isinstance(pbxs, str):
        raise TypeError("pbxs is a collection of PBX ids, not one id")
    return tuple(dict.fromkeys(pbxs))


@dataclass(frozen=True, slots=True)
class Grant:
    """What a login session or an API token grants now: its user as stored, and until when.

    ``expires_at`` and ``last_used_at`` are those of a login session; an API token has neither (None): it is
    valid until it is removed with its user.
    """

    user: User
    expires_at: float | None = None
    last_used_at: float | None = None


#: What a call-back came to, as the person who made it records it (``missed.result``).
CallbackOutcome = Literal["reached", "no_answer", "busy", "wrong_number", "left_message"]
CALLBACK_OUTCOMES: tuple[CallbackOutcome, ...] = ("reached", "no_answer", "busy", "wrong_number", "left_message")
#: The outcomes after which nobody owes the number a call-back: recording one closes its open entries.
CLOSING_OUTCOMES: frozenset[str] = frozenset({"reached", "wrong_number"})


@dataclass(frozen=True, slots=True)
class Claim:
    """"Calling back, taken by Anna": a user calls the number ``number_key`` of ``pbx`` back until ``until``.

    One claim per number at a time; past ``until`` it counts as released (``expire_claims`` deletes it).
    ``caller`` is the number as its newest entry wrote it, ``by_name`` the user's display name (for people).
    """

    pbx: str
    number_key: str
    by: str
    claimed_at: float
    until: float
    caller: str | None = None
    by_name: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """What a call-back of a number came to, recorded on the entries of that number then open (``entry_ids``)."""

    pbx: str
    number_key: str
    result: CallbackOutcome
    by: str
    at: float
    comment: str | None = None
    entry_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class MissedGroup:
    """The open entries of one caller on one PBX, as one row of the shared register.

    ``number_key`` None: a withheld number, never grouped (each such entry is a group of its own). ``caller`` and
    ``caller_name`` are the newest entry's (its name: the newest one the PBX gave); ``contact_name`` the
    directory's first contact of the number. ``entries`` newest first; ``reasons`` each once, newest first;
    ``claim`` who calls the number back now (None: nobody); ``results`` what its call-backs came to, newest first.
    """

    pbx: str
    number_key: str | None
    caller: str | None
    caller_name: str | None
    count: int
    first_at: float
    last_at: float
    reasons: tuple[str, ...]
    entries: tuple[MissedEntry, ...]
    contact_name: str | None = None
    claim: Claim | None = None
    results: tuple[CallbackResult, ...] = ()

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.last_at, max(e.id or 0 for e in self.entries))


@dataclass(frozen=True, slots=True)
class GroupKey:
    """A group's place in the shared register's order (its newest entry's ``missed_at``, then that entry's id,
    newest first): where the next page of ``list_missed_groups`` starts."""

    last_at: float
    last_id: int


@dataclass(frozen=True, slots=True)
class RegisterChange:
    """Missed-call entries a committed batch opened or changed (for the WebSocket ``missed.*`` messages), and the
    claims it released (a call-back reached the customer: ``missed.released``)."""

    opened: tuple[MissedEntry, ...] = ()
    updated: tuple[MissedEntry, ...] = ()
    released: tuple[Claim, ...] = ()


class StoreError(Exception):
    """Base class of the store's own errors."""


class StoreClosed(StoreError):
    """The store was used after ``close()``."""


class MissedNotFound(StoreError, KeyError):
    """No missed entry has this id."""

    def __init__(self, entry_id: int) -> None:
        super().__init__(entry_id)
        self.entry_id = entry_id

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return f"no missed-call entry #{self.entry_id}"


class UserExists(StoreError):
    """``add_user`` with a name that is taken (names are case-insensitive)."""


class UserNotFound(StoreError, KeyError):
    """No user has this name."""

    def __str__(self) -> str:
        return f"no user named {self.args[0]!r}"


class ContactNotFound(StoreError, KeyError):
    """No contact has this id."""

    def __str__(self) -> str:
        return f"no contact #{self.args[0]}"


class MissedStateError(StoreError):
    """The entry is not in the state the action needs."""

    def __init__(self, entry: MissedEntry, message: str) -> None:
        super().__init__(message)
        self.entry = entry


class MissedAlreadyClosed(MissedStateError):
    """Closing an entry that is already closed."""


class MissedAlreadyOpen(MissedStateError):
    """Reopening an entry that is open."""


class NumberTaken(StoreError):
    """Claiming (or releasing) a number another user has claimed; ``claim`` is theirs."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(f"{claim.by_name or claim.by} is calling {claim.caller or claim.number_key} back")
        self.claim = claim


class NothingOpen(StoreError):
    """Claiming a number, or recording a call-back result on it, when it has no open entry on that PBX."""


#: Rows a streaming read (``iter_calls``, ``iter_missed``, ``iter_agent_misses``) fetches per query.
DEFAULT_PAGE_SIZE = 500


class CallRow(NamedTuple):
    """A journal row as a listing prints it: the fields of ``CallRecord.to_json``, in its order, nothing more.

    Why not a ``CallRecord``: a listing of a year prints 100,000s of rows, and a record carries its legs (a JSON
    list per row, the bulk of it on disk and in the decoding) that no listing or export prints. Times are epoch
    seconds, lists are tuples, exactly as in the record; the printer formats them (``companion.call_rows``).
    """

    linkedid: str
    direction: str
    caller: str | None
    caller_name: str | None
    called: str | None
    answered: bool
    answered_by: str | None
    missed_reason: str | None
    talk_seconds: float
    transferred_to: str | None
    agents_rung_not_answered: tuple[str, ...]
    recording: str | None
    started_at: float
    answered_at: float | None
    ended_at: float | None
    outcome: str
    ring_seconds: float
    queue: str | None
    did: str | None
    hangup_cause: int | None
    hangup_cause_txt: str | None
    hung_up_by: str | None
    recordings: tuple[str, ...]
    agents_answered: tuple[str, ...]
    complete: bool
    linkedids: tuple[str, ...]
    pbx: str


@dataclass(frozen=True, slots=True)
class CallKey:
    """A call's place in the journal's order (``started_at``, then ``linkedid``, then ``pbx``: the same linkedid
    may start at the same instant on two PBXs): where a keyset page resumes.

    ``list_calls(after=CallKey.of(last_row))`` is the next page, at the cost of the rows it returns however deep
    it is (an ``offset`` costs every row it skips), and unmoved by calls saved meanwhile before that place.
    """

    started_at: float
    linkedid: str
    pbx: str = DEFAULT_PBX

    @classmethod
    def of(cls, record: CallRecord | CallRow) -> CallKey:
        return cls(record.started_at, record.linkedid, record.pbx)


@dataclass(frozen=True, slots=True)
class MissedKey:
    """A register entry's place in the register's order (``missed_at``, then ``id``); see :class:`CallKey`."""

    missed_at: float
    id: int

    @classmethod
    def of(cls, entry: MissedEntry) -> MissedKey:
        if entry.id is None:
            raise ValueError("an entry that is not stored yet has no place in the register")
        return cls(entry.missed_at, entry.id)


@dataclass(frozen=True, slots=True)
class CallerFacts:
    """What the store knows of a ringing caller: everything the screen-pop's card shows, nothing more.

    ``contacts``: the directory's contacts of the number (the directory is shared by every PBX); ``attached``: the
    contact an agent attached this call to by hand; ``last_calls``: the number's newest calls, newest first;
    ``open_missed``: its open missed entries, oldest first.
    """

    contacts: tuple[Contact, ...] = ()
    attached: Contact | None = None
    last_calls: tuple[CallRecord, ...] = ()
    open_missed: tuple[MissedEntry, ...] = ()


class StagedWrites(Protocol):
    """Finished calls, written behind the AMI event path (which never waits for a disk)."""

    def stage_call(
        self, record: CallRecord, missed: MissedEntry | None, agent_misses: Sequence[AgentMiss]
    ) -> None:
        """Save a finished call with its missed entry (if it opens one) and its agents' misses.

        Everything is saved under the record's PBX (``record.pbx``; the entry's and the misses' own ``pbx``).
        When committed, in the same transaction: the call's live events (of its PBX) are deleted, and the call-back
        rule (``cti.callbacks``) is applied: the open entries of the number the call reached, on its PBX, are closed
        (an answered outbound call: ``closed_by='callback'``; an answered inbound call: ``'called_again'``);
        a call never closes the entry it opens itself.
        """
        ...

    async def run_writer(self) -> None:
        """Commit staged writes until cancelled, then commit what is left. Run it in a TaskGroup."""
        ...

    async def flush(self) -> None:
        """Commit everything staged before this call; return once it is durable."""
        ...

    @property
    def pending_count(self) -> int:
        """Items staged and not committed yet (back-pressure: the daemon stops reading the PBX above a bound)."""
        ...

    def on_register_change(self, listener: Callable[[RegisterChange], None]) -> None:
        """Call ``listener`` after every commit that opened or changed missed-call entries."""
        ...


class LiveJournal(Protocol):
    """The events of calls in progress, kept so that a daemon killed mid-call can rebuild them."""

    def stage_event(self, linkedid: str, headers: Sequence[tuple[str, str]], received_at: float, *,
                    pbx: str = DEFAULT_PBX) -> None:
        """Journal one AMI event of a call in progress on ``pbx`` (synchronous: it is only staged)."""
        ...

    async def live_events(self, pbx: str | None = None) -> list[LiveEvent]:
        """Journalled events of calls not yet saved, in the order they were staged: those of ``pbx`` when given
        (a daemon rebuilds each PBX it follows from its own events), else every PBX's."""
        ...


class Journal(Protocol):
    """The call journal: finished calls. Every filter is served by an index, whatever the journal's size."""

    async def list_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        after: CallKey | None = None,
        pbxs: Collection[str] | None = None,
    ) -> list[CallRecord]:
        """Journal rows by ``started_at`` then ``linkedid`` (``since`` inclusive, ``until`` exclusive): one page.

        ``number`` matches the caller or the called number however either was written; ``agent`` matches an
        agent who answered or was rung (that extension on any of ``pbxs``). ``pbxs``: None, every PBX's calls;
        else only those PBXs' (the order's last tie-break is the PBX). ``newest_first`` pages from the latest call
        back. ``after`` starts the page after that place in the order (``CallKey.of`` the previous page's last row):
        keyset paging, each page one indexed query costing the rows it returns. An ``offset`` costs the rows it skips
        (and counts from ``after`` when both are given). For a whole listing in one go use ``iter_calls``.
        """
        ...

    def iter_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[CallRecord]:
        """The rows ``list_calls`` would return with the same filters and order, streamed in constant memory.

        Use it for listings and exports of any length (``async for record in store.iter_calls(...)``). Rows
        are read ``page_size`` at a time, each page one short indexed query that starts after the last row
        yielded (keyset paging on ``started_at``, ``linkedid``), so memory holds one page, a page costs the same
        at the end of a year as at its start, and a long export never holds a reader between pages. It is not
        a snapshot: a call committed meanwhile beyond the cursor is included. ``limit`` stops after that many.
        """
        ...

    def iter_call_rows(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[CallRow]:
        """The calls ``iter_calls`` streams with the same filters (oldest first), as lean ``CallRow`` tuples.

        For listings and exports (``cti calls``): only the columns a listing prints are read, no legs, no
        record built, at a fraction of ``iter_calls``' cost per row; the same paging and constant memory.
        """
        ...

    def iter_call_pages(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        fields: Sequence[str] | None = None,
        stored: bool = False,
        pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
        """The rows ``iter_call_rows`` streams, a page (at most ``page_size`` rows) at a time.

        ``fields`` None: each row is a ``CallRow``. Else each row is the plain tuple of those ``CallRow`` fields
        (any of them, in that order), typed as in ``CallRow``, and only their columns are read: a table that
        prints 14 of the 26 fields pays for 14. Pages let a printer format a page's text in one piece
        (``companion.call_rows``: a year's agent listing is 60,000 rows); an unknown field is a ``ValueError``.

        ``stored``: each row is a plain tuple (of every ``CallRow`` field when ``fields`` is None) holding the
        values as the store keeps them rather than as ``CallRow`` types them: each list field (the agents, the
        recordings, the linkedids) is the JSON text of its list, ``json.dumps(list(values), ensure_ascii=False)``
        to the character (``'[]'``, ``'["101", "102"]'``), and each flag (``answered``, ``complete``) is 0 or 1
        (or a bool). For a printer that writes the lists out as text again: a month's export is 150,000 rows,
        and decoding four lists per row only to encode them again was a fifth of its time. Every other field is
        as in ``CallRow``.
        """
        ...

    async def get_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> CallRecord | None:
        """The call ``linkedid`` of ``pbx`` (a linkedid is unique only within its PBX), or None."""
        ...

    async def count_calls(self, *, pbxs: Collection[str] | None = None) -> int:
        """Calls in the journal (of ``pbxs`` when given)."""
        ...


class Register(Protocol):
    """The missed-call register with its call-back history, and the agents' misses."""

    async def get_missed(self, entry_id: int) -> MissedEntry:
        """Raises ``MissedNotFound``."""
        ...

    async def list_missed(
        self,
        *,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: MissedKey | None = None,
        pbxs: Collection[str] | None = None,
    ) -> list[MissedEntry]:
        """Register entries by ``missed_at`` then ``id`` (``since`` inclusive, ``until`` exclusive): one page,
        starting after ``after`` when given (keyset paging; see ``Journal.list_calls``); of ``pbxs`` when given."""
        ...

    def iter_missed(
        self,
        *,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[MissedEntry]:
        """The entries ``list_missed`` would return with the same filters and order, streamed a page at a time
        (keyset paging on ``missed_at``, ``id``; see ``Journal.iter_calls``)."""
        ...

    async def missed_history(self, entry_id: int) -> list[MissedHistoryItem]:
        """The entry's history, oldest first. Raises ``MissedNotFound``."""
        ...

    async def close_missed(
        self, entry_id: int, comment: str | None, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        """Close an open entry by hand (``closed_by='manual'``).

        Raises:
            MissedNotFound: no entry has this id.
            MissedAlreadyClosed: the entry is closed already.
        """
        ...

    async def reopen_missed(
        self, entry_id: int, comment: str | None, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        """Reopen a closed entry (its closing facts are cleared; the history keeps them).

        Raises:
            MissedNotFound: no entry has this id.
            MissedAlreadyOpen: the entry is open.
        """
        ...

    async def comment_missed(
        self, entry_id: int, comment: str, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        """Set the entry's comment without changing its state. Raises ``MissedNotFound``."""
        ...

    async def list_agent_misses(
        self, *, agent: str | None = None, since: float | None = None, until: float | None = None,
        pbxs: Collection[str] | None = None,
    ) -> list[AgentMiss]:
        """Agents' misses by ``rang_at`` then id (``since`` inclusive, ``until`` exclusive); of ``pbxs`` when given
        (``agent`` is then that extension on those PBXs)."""
        ...

    def iter_agent_misses(
        self, *, agent: str | None = None, since: float | None = None, until: float | None = None,
        page_size: int = DEFAULT_PAGE_SIZE, pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[AgentMiss]:
        """What ``list_agent_misses`` returns, streamed a page at a time (see ``Journal.iter_calls``)."""
        ...


class SharedRegister(Protocol):
    """The register a team shares: entries grouped by caller, who calls a number back now, what call-backs came to.

    A number is (``pbx``, ``number_key``): the register is per PBX; ``number_key`` is the entries' ``caller_key``.
    """

    async def list_missed_groups(self, *, pbxs: Collection[str] | None = None, limit: int | None = None,
                                 after: GroupKey | None = None, now: float | None = None) -> list[MissedGroup]:
        """The open entries grouped by caller (per PBX; a withheld number's entries each alone), newest group first,
        one page after ``after`` (``MissedGroup.key`` of the previous page's last group). The grouping is one
        query over the open entries; the page's entries, claims (those still valid at ``now``), results and
        directory names are one indexed query each."""
        ...

    async def claim_number(self, pbx: str, number_key: str, *, by: str, until: float, by_name: str | None = None,
                           at: float | None = None) -> Claim:
        """Claim the number for ``by`` until ``until`` (the same user again: the claim is extended).

        Raises:
            NumberTaken: another user's claim holds it (its ``until`` has not passed).
            NothingOpen: the number has no open entry on ``pbx``.
        """
        ...

    async def release_number(self, pbx: str, number_key: str, *, by: str | None = None,
                             at: float | None = None) -> Claim | None:
        """End the claim on the number (``by``: only that user's; None: whoever's). None when nobody held it.
        Raises ``NumberTaken`` when ``by`` is given and another user's claim holds it at ``at`` (default: now)."""
        ...

    async def expire_claims(self, now: float | None = None) -> list[Claim]:
        """Delete the claims whose ``until`` is at or before ``now`` and return them (each one once, whichever node
        asks first)."""
        ...

    async def list_claims(self, *, pbxs: Collection[str] | None = None, now: float | None = None) -> list[Claim]:
        """The claims still valid at ``now`` (of ``pbxs`` when given)."""
        ...

    async def record_callback_result(self, pbx: str, number_key: str, result: CallbackOutcome, *, by: str,
                                     comment: str | None = None, at: float | None = None) -> CallbackResult:
        """Record what a call-back of the number came to on each of its open entries (kept: ``entry_results``);
        ``reached`` and ``wrong_number`` also close them (``closed_by='manual'``, the comment kept, announced as
        changed entries). Raises ``NothingOpen`` when the number has no open entry on ``pbx``."""
        ...

    async def entry_results(self, entry_id: int) -> list[CallbackResult]:
        """The call-back results recorded on the entry, oldest first (``entry_ids`` is this entry alone)."""
        ...


class Users(Protocol):
    """Panel users, their API tokens and login sessions (only hashes of secrets are stored)."""

    async def add_user(self, user: User) -> User:
        """Create a user. Raises ``UserExists``."""
        ...

    async def get_user(self, name: str) -> User | None:
        """The user with this name (case-insensitive), or None."""
        ...

    async def list_users(self) -> list[User]: ...

    async def update_user(self, name: str, *, password_hash: str | None = None, role: Role | None = None,
                          extension: str | None = None, display_name: str | None = None,
                          pbxs: Collection[str] | None = None, email: str | None = None) -> User:
        """Change the given fields (``pbxs``: the PBXs the user belongs to; empty: every PBX; ``email``: the
        address, ``""`` to remove it). Raises ``UserNotFound``.

        A new password, role, extension or set of PBXs ends the user's login sessions in the same transaction
        (what they were granted has changed); their API tokens stay.
        """
        ...

    async def remove_user(self, name: str) -> None:
        """Delete a user with their login sessions and API tokens, in one transaction. Raises ``UserNotFound``."""
        ...

    async def add_token(self, name: str, token_hash: str, label: str | None) -> None:
        """Store the hash of a new API token of this user. Raises ``UserNotFound``."""
        ...

    async def user_of_token(self, token_hash: str) -> User | None: ...

    async def add_session(self, token_hash: str, user_name: str, *, created_at: float, expires_at: float,
                          address: str | None) -> None:
        """Store a new login session of this user; expired sessions are deleted on the way. Raises
        ``UserNotFound``."""
        ...

    async def session_grant(self, token_hash: str, now: float) -> Grant | None:
        """The session's grant, or None when there is no such session or it expired before ``now``."""
        ...

    async def touch_session(self, token_hash: str, *, used_at: float, expires_at: float) -> None:
        """Record a use of the session and push its expiry to ``expires_at`` (sliding expiry)."""
        ...

    async def end_session(self, token_hash: str) -> None:
        """Delete a session (a logout); nothing happens if there is none."""
        ...

    async def grants(self, hashes: Collection[str]) -> dict[str, Grant]:
        """The grants of those of ``hashes`` that are a session or an API token still stored, in one query
        (expired sessions included: compare ``expires_at`` with the time)."""
        ...


class Directory(Protocol):
    """The client directory: contacts with their phones and vehicles, and calls attached to them by hand."""

    async def add_contacts(self, contacts: Iterable[Contact], *, chunk_size: int = 2000,
                           progress: Callable[[int], None] | None = None) -> list[int]:
        """Save contacts with their phones and vehicles, all or nothing; returns their ids."""
        ...

    async def add_contact(self, contact: Contact) -> Contact: ...

    async def get_contact(self, contact_id: int) -> Contact:
        """Raises ``ContactNotFound``."""
        ...

    async def find_contacts(self, query: str | Query, *, limit: int = 20) -> list[Contact]:
        """By phone number (any form), surname prefix, plate (Cyrillic or Latin, region optional) or the
        plate's three digits: what ``cti.directory.parse_query`` makes of the text."""
        ...

    async def list_contacts(self, *, after_id: int = 0, limit: int = 1000) -> list[Contact]:
        """Every contact by id, a page at a time (export)."""
        ...

    async def count_contacts(self) -> int: ...

    async def attach_call(self, linkedid: str, contact_id: int, by: str | None, *, pbx: str = DEFAULT_PBX) -> None:
        """Link the call ``linkedid`` of ``pbx`` to a contact by hand (replaces an earlier link). Raises
        ``ContactNotFound``."""
        ...

    async def contact_of_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> Contact | None: ...


class CallerLookups(Protocol):
    """The screen-pop's reads: on a lane of their own, which no panel, CLI or report query can hold up."""

    async def caller_facts(self, number: str, *, linkedid: str | None = None, last_calls: int = 6,
                           contacts: int = 5, open_missed: int = 50, pbx: str = DEFAULT_PBX,
                           pbxs: Collection[str] | None = None) -> CallerFacts:
        """What the card of a call from ``number`` shows, at a cost that does not grow with the caller's history.

        At most ``last_calls`` newest calls of the number (either side), ``contacts`` directory contacts of it
        (0: the directory is not searched), ``open_missed`` open entries, and the contact ``linkedid`` (a call of
        ``pbx``) was attached to. ``pbxs``: the calls and entries of those PBXs only (None: every PBX); the
        directory is shared by every PBX. Every part is one indexed, LIMITed query; they run on the lookup lane,
        never behind a long listing.
        """
        ...


class AlertNotFound(StoreError, KeyError):
    """No alert has this id."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(alert_id)
        self.alert_id = alert_id

    def __str__(self) -> str:
        return f"no alert #{self.alert_id}"


class AlertAlreadyAcknowledged(StoreError):
    """Acknowledging an alert a supervisor acknowledged already (``alert`` says who and when)."""

    def __init__(self, alert: Alert) -> None:
        super().__init__(f"alert #{alert.id} was acknowledged already by {alert.acknowledged_by}")
        self.alert = alert


class Alerts(Protocol):
    """The supervisor's alerts (``cti/alerts.py``): raised, acknowledged, resolved, and kept as a history.

    At most one alert per PBX and condition key is unresolved at a time; a resolved alert is never changed again
    except by a late acknowledgement, and never deleted. Ids grow with each alert raised (the history's order).
    """

    async def raise_alert(self, condition: Condition, *, at: float) -> tuple[Alert, bool]:
        """An alert for ``condition`` raised at ``at``, and True; or, when an unresolved alert of the same PBX and
        key exists (another node raised it during a takeover, or a restart found it), that alert and False."""
        ...

    async def acknowledge_alert(self, alert_id: int, by: str, *, at: float) -> Alert:
        """A supervisor (``by``) saw the alert. Raises ``AlertNotFound``, ``AlertAlreadyAcknowledged``."""
        ...

    async def resolve_alert(self, alert_id: int, *, at: float) -> Alert:
        """The alert's condition ended; an alert resolved already is returned as it is. Raises ``AlertNotFound``."""
        ...

    async def get_alert(self, alert_id: int) -> Alert:
        """Raises ``AlertNotFound``."""
        ...

    async def active_alerts(self, *, pbxs: Collection[str] | None = None) -> list[Alert]:
        """The unresolved alerts (of ``pbxs`` when given), oldest first."""
        ...

    async def list_alerts(self, *, pbxs: Collection[str] | None = None, active: bool | None = None,
                          before: int | None = None, limit: int = 50) -> list[Alert]:
        """The history, newest first: at most ``limit`` alerts with an id under ``before`` (keyset paging: the last
        id of the previous page), of ``pbxs`` when given; ``active`` True: unresolved only, False: resolved only."""
        ...


ScriptRunStatus = Literal["open", "registered", "ended", "discarded"]


@dataclass(frozen=True, slots=True)
class ScriptRun:
    """One run of a contact script as the store keeps it (``ui_bridge/script_desk.py`` follows it).

    ``agent`` is the extension of the agent following it on ``pbx``; ``linkedid`` the call it was launched for (None
    for a run started by hand); ``state`` the runner's saved state (``cti.scripts.state_to_json``, a JSON object);
    ``revision`` grows with each save (a save names the revision it read: two tabs cannot overwrite each other).
    """

    id: int
    pbx: str
    agent: str
    linkedid: str | None
    script: str
    version: str
    status: ScriptRunStatus
    state: dict[str, Any]
    revision: int
    started_at: float
    updated_at: float


class ScriptRunNotFound(StoreError, KeyError):
    """No script run has this id."""

    def __init__(self, run_id: int) -> None:
        super().__init__(run_id)
        self.run_id = run_id

    def __str__(self) -> str:
        return f"no script run #{self.run_id}"


class ScriptRunChanged(StoreError):
    """A save named a revision the run is no longer at: someone saved it meanwhile (``run`` is it now)."""

    def __init__(self, run: ScriptRun) -> None:
        super().__init__(f"script run #{run.id} changed meanwhile (now at revision {run.revision})")
        self.run = run


class ScriptRuns(Protocol):
    """The contact script's runs (issue 13) and the script versions they follow, kept so that a reload, a second tab
    or a restart continues where the agent was. Runs are never deleted; one run per agent and call."""

    async def keep_script_version(self, name: str, version: str, source: str, *, at: float) -> None:
        """Keep the text of a script's version (once: a version is its content, so a second call changes nothing)."""
        ...

    async def script_source(self, name: str, version: str) -> str | None:
        """The text of a kept version, or None."""
        ...

    async def kept_script_versions(self) -> list[tuple[str, str]]:
        """Every kept version as (name, version), the newest loaded first (a few per script: a small table)."""
        ...

    async def start_script_run(self, *, pbx: str, agent: str, linkedid: str | None, script: str, version: str,
                               state: dict[str, Any], at: float) -> tuple[ScriptRun, bool]:
        """A new open run, and True; or, for a call that already has a run of this agent (launched twice: two nodes,
        a second answer of the same call), that run and False."""
        ...

    async def save_script_run(self, run_id: int, *, state: dict[str, Any], status: ScriptRunStatus, revision: int,
                              at: float) -> ScriptRun:
        """Save a run's new state if it is still at ``revision``; the run at its next revision. Raises
        ``ScriptRunNotFound``, ``ScriptRunChanged`` (with the run as it is now)."""
        ...

    async def get_script_run(self, run_id: int) -> ScriptRun:
        """Raises ``ScriptRunNotFound``."""
        ...

    async def open_script_runs(self, *, pbx: str | None = None, agent: str | None = None,
                               linkedid: str | None = None) -> list[ScriptRun]:
        """The open runs, oldest first: of an agent (``pbx`` and ``agent``), of a call (``pbx`` and ``linkedid``), or
        all of them."""
        ...


class RegisteredContactNotFound(StoreError, KeyError):
    """No contact of the contact register has this id."""

    def __init__(self, contact_id: int) -> None:
        super().__init__(contact_id)
        self.contact_id = contact_id

    def __str__(self) -> str:
        return f"no registered contact #{self.contact_id}"


class StageConflict(StoreError):
    """Setting a stage a different event set already (``cti.contacts_register.stage_change``); ``contact`` as it is."""

    def __init__(self, contact: RegisteredContact, stage: Stage) -> None:
        mark = contact.stage(stage)
        said = f" (external id {mark.external_id})" if mark is not None and mark.external_id else ""
        super().__init__(f"contact #{contact.id}: {stage} was set already by {mark.by if mark else '?'}{said}; "
                         "the same event again changes nothing, another one is refused")
        self.contact = contact
        self.stage = stage


class ContactRegister(Protocol):
    """The contact register (issue 13): one entry per contact a script run registered (``cti/contacts_register.py``).

    Saving is idempotent per run; the stage flags are set by the run itself, then by a DMS or an admin
    (``set_contact_stage``), each once. Listings are keyset pages in the order (``at``, ``id``), each filter served
    by an index.
    """

    async def save_contact(self, draft: ContactDraft, *, repeat_days: float, run_id: int | str | None = None,
                           caller: str | None = None, workshop: str | None = None,
                           at: float | None = None) -> RegisteredContact:
        """Register a finished run (``draft.status == "registered"``; else ``ValueError``), in one transaction.

        A new client (``draft.new_client``) is created in the directory with their car, in the same transaction; a
        known one (``draft.contact_id``) gives the client's name, phone and type. Repeat when the client had an
        earlier contact, or one of their numbers (and ``caller``, the run's caller number) an earlier call, within
        ``repeat_days`` before the contact (``cti.directory.is_repeat``); the run's own call does not count.
        ``run_id``: the edge's id of the run; a second save of the same run (the same ``run_id``, or without one the
        same draft) returns the first one's contact and changes nothing. ``at``: when it is saved (default now).
        """
        ...

    async def get_registered_contact(self, contact_id: int) -> RegisteredContact:
        """Raises ``RegisteredContactNotFound``."""
        ...

    async def registered_contact_of_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> int | None:
        """The register's first contact linked to the call ``linkedid`` of ``pbx`` (``contact_calls``' index on the
        call), or None: whether "register now" would register the call a second time."""
        ...

    async def list_registered_contacts(self, where: ContactFilter | None = None, *, after: ContactKey | None = None,
                                       limit: int | None = 100, newest_first: bool = False
                                       ) -> list[RegisteredContact]:
        """One page of the register in its order (``at``, ``id``; ``newest_first``: reversed), after ``after``."""
        ...

    def iter_registered_contacts(self, where: ContactFilter | None = None, *, limit: int | None = None,
                                 page_size: int = DEFAULT_PAGE_SIZE) -> AsyncIterator[RegisteredContact]:
        """What ``list_registered_contacts`` gives, oldest first, streamed a keyset page at a time (exports)."""
        ...

    async def set_contact_stage(self, contact_id: int, stage: Stage, *, at: float, by: str,
                                external_id: str | None = None) -> tuple[RegisteredContact, bool]:
        """Set a stage flag (``cti.contacts_register.stage_change``): the contact and True when it was set; the
        contact unchanged and False for the same event again. Raises ``RegisteredContactNotFound``,
        ``StageConflict``."""
        ...


class ReminderNotFound(StoreError, KeyError):
    """No reminder has this id."""

    def __init__(self, reminder_id: int) -> None:
        super().__init__(reminder_id)
        self.reminder_id = reminder_id

    def __str__(self) -> str:
        return f"no reminder #{self.reminder_id}"


class ReminderClosed(StoreError):
    """Closing a reminder that is closed already (``reminder`` says how, by whom and when)."""

    def __init__(self, reminder: Reminder) -> None:
        super().__init__(f"reminder #{reminder.id} was closed already ({reminder.status}, by {reminder.closed_by})")
        self.reminder = reminder


class Reminders(Protocol):
    """Call-back reminders (issue 13, ``cti/reminders.py``): made by a script's reminder step, pushed to their
    assignee when due, escalated to the admins when overdue, closed by an answered call or by hand. Never deleted.

    Several nodes may share the store: the ticker's two marks (``due_reminders``, ``escalate_reminders``) are each
    one statement that sets a time only where it is not set yet, so each reminder is pushed once, by one node.
    """

    async def add_reminder(self, reminder: NewReminder) -> tuple[Reminder, bool]:
        """Keep a new reminder, and True; or, for the same run, employee and time again (a retried hand-over), the
        one kept already and False."""
        ...

    async def get_reminder(self, reminder_id: int) -> Reminder:
        """Raises ``ReminderNotFound``."""
        ...

    async def list_reminders(self, *, pbxs: Collection[str] | None = None, extension: str | None = None,
                             user_name: str | None = None, open_only: bool = True, escalated: bool | None = None,
                             limit: int = 200) -> list[Reminder]:
        """At most ``limit`` reminders, the earliest due first (then by id): of ``pbxs`` (None: every PBX); an
        assignee's (their ``extension`` or ``user_name``, either matching) when one is given; open ones only unless
        ``open_only`` is False; ``escalated`` True: only those escalated to the admins, False: only those not."""
        ...

    async def close_reminder(self, reminder_id: int, *, by: str, comment: str | None, cancelled: bool = False,
                             at: float) -> Reminder:
        """Close an open reminder by hand (done, or ``cancelled``), with a comment. Raises ``ReminderNotFound``,
        ``ReminderClosed``."""
        ...

    async def close_reminders_by_call(self, call: ReminderCall) -> list[Reminder]:
        """Close the open reminders a finished call reached (``cti.reminders.closes`` decides), in one transaction;
        those it closed, as they are now (none twice: a second node finds them closed)."""
        ...

    async def due_reminders(self, now: float) -> list[Reminder]:
        """Mark the open reminders due at ``now`` and not yet pushed as pushed; those this call marked."""
        ...

    async def escalate_reminders(self, now: float, after: float) -> list[Reminder]:
        """Mark the open reminders due ``after`` seconds or more before ``now`` and not yet escalated as escalated;
        those this call marked."""
        ...


class TranscriptionJobNotFound(StoreError, KeyError):
    """No transcription job with that id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"no transcription job {self.job_id}"


class Transcriptions(Protocol):
    """The transcription queue and the transcripts (issue 14, ``cti/transcripts.py``).

    A restart loses no job and repeats none: a job is written before it is run; it is taken with a lease; its
    transcript and its ``done`` are one transaction, accepted only from the taker whose lease it is, so a job another
    node (or a restarted daemon) took over after a lease ran out is never stored twice. The words are searchable
    (stemmed, Russian and English: ``cti/stemming.py``).
    """

    async def enqueue_transcription(self, job: NewJob, *, at: float) -> TranscriptionJob | None:
        """Queue a call's transcription; None when that call (pbx, linkedid) already has a job (any state)."""
        ...

    async def requeue_transcription(self, job_id: int, *, at: float) -> TranscriptionJob:
        """Queue a failed (or done) job again with its attempts reset (``cti transcribe --again``)."""
        ...

    async def take_transcription_job(self, *, worker: str, lease_seconds: float, now: float,
                                     max_attempts: int) -> TranscriptionJob | None:
        """The oldest job to run now, taken by ``worker`` until ``now + lease_seconds``: a queued one, or a running
        one whose lease ran out (its taker died). Counts the attempt. A job whose lease ran out after
        ``max_attempts`` tries is marked failed ("the worker died …") instead of being taken. None: nothing to do."""
        ...

    async def extend_transcription_lease(self, job_id: int, *, worker: str, until: float) -> bool:
        """Keep a long job's lease; False when the job is no longer this worker's."""
        ...

    async def finish_transcription_job(self, job_id: int, transcript: Transcript, *, worker: str, at: float,
                                       flags: Sequence[str] = ()) -> bool:
        """Store the transcript (its words, their stems for search, the keyword lists it matched) and mark the job
        done, in one transaction; False (nothing written) when the job is not ``worker``'s running job any more."""
        ...

    async def keep_live_transcript(self, linkedid: str, transcript: Transcript, *, pbx: str = DEFAULT_PBX,
                                   call_started_at: float, at: float, flags: Sequence[str] = ()) -> bool:
        """Keep the words a call's live tap heard (issue 17, ``companion/live/manager.py``) as its transcript, unless
        it has one already (an after-call transcription that finished first is the better one: False, nothing
        written). An after-call job that finishes later replaces it (``finish_transcription_job``)."""
        ...

    async def fail_transcription_job(self, job_id: int, reason: str, *, worker: str, at: float,
                                     retry: bool) -> TranscriptionJob | None:
        """Record a failed try: back to ``queued`` when ``retry``, else ``failed`` with ``reason``. None when the job is
        not ``worker``'s running job any more."""
        ...

    async def get_transcription_job(self, job_id: int) -> TranscriptionJob:
        """Raises ``TranscriptionJobNotFound``."""
        ...

    async def transcription_job_of(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> TranscriptionJob | None:
        """The call's job, if it has one."""
        ...

    async def list_transcription_jobs(self, *, states: Collection[JobState] | None = None,
                                      pbxs: Collection[str] | None = None, limit: int = 200) -> list[TranscriptionJob]:
        """Jobs in queue order (oldest first), of those states and PBXs (None: all)."""
        ...

    async def count_transcription_jobs(self) -> dict[JobState, int]:
        """How many jobs are in each state (``cti transcribe`` and the health page)."""
        ...

    async def get_transcript(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> Transcript | None:
        """The call's transcript (words in time order), None when it has none (yet)."""
        ...

    async def transcript_flags(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> tuple[str, ...]:
        """The keyword lists the call's transcript matched."""
        ...

    async def search_transcripts(self, query: TranscriptQuery) -> list[TranscriptHit]:
        """Calls whose words match ``query`` (every stemmed word of its text, on the speaker's lane when it names
        one), newest first, at most ``query.limit``; each hit with the moment of its first match."""
        ...

    async def calls_without_transcription(self, *, since: float, until: float | None = None,
                                          pbxs: Collection[str] | None = None,
                                          limit: int = 1000) -> list[CallRecord]:
        """Answered calls started in [since, until) that have a recording and no transcription job yet, oldest
        first (``cti transcribe --since``)."""
        ...

    async def forget_audio(self, linkedid: str, *, pbx: str, names: Sequence[str], at: float, reason: str) -> None:
        """Log that the retention deleted these recording files of a call (the log ``cti recordings deleted``
        prints; the transcript stays)."""
        ...

    async def deleted_audio(self, *, since: float | None = None, limit: int = 500) -> list[AudioDeletion]:
        """The retention's log, newest first."""
        ...


class QaReviews(Protocol):
    """QA's comments pinned to a moment of a call, and the calls' scores against the checklist (``cti/qa.py``)."""

    async def add_qa_comment(self, linkedid: str, *, pbx: str, at_second: float, text: str, by: str,
                             at: float) -> QaComment: ...

    async def qa_comments(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> list[QaComment]:
        """The call's comments in the order of their moments."""
        ...

    async def save_qa_score(self, linkedid: str, *, pbx: str, checklist: str, answers: dict[str, int],
                            points: float, max_points: float, agent: str | None, by: str, at: float) -> QaScore:
        """Save ``by``'s score of the call (replacing their earlier one)."""
        ...

    async def qa_scores(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> list[QaScore]: ...

    async def qa_agent_report(self, *, since: float, until: float, pbxs: Collection[str] | None = None,
                              checklist: str | None = None) -> list[AgentScore]:
        """Per agent, over the calls started in [since, until) that were scored: count, mean, lowest, highest
        percent; by agent."""
        ...


class ComplaintNotFound(StoreError, KeyError):
    """No complaint (or attachment, or task) with that id."""

    def __str__(self) -> str:
        return f"no complaint #{self.args[0]}"


class ComplaintChanged(StoreError):
    """The complaint changed since it was read (``revision``): read it again and redo the change."""

    def __init__(self, complaint: Complaint) -> None:
        super().__init__(f"complaint #{complaint.id} was changed by someone else (revision {complaint.revision})")
        self.complaint = complaint


class MailNotFound(StoreError, KeyError):
    """No mail in the outbox with that id."""

    def __str__(self) -> str:
        return f"no mail #{self.args[0]} in the outbox"


class Complaints(Protocol):
    """Complaints, their history, tasks and attachments (issue 15, ``cti/complaints.py``).

    Every change is one transaction (:meth:`commit_complaint`): the new state, its history, the stage's task and the
    e-mails it sends, so a complaint never moves without its task or its notification.
    """

    async def register_complaint(self, new: NewComplaint, *, at: float, stage_due_at: float | None,
                                 mails: Sequence[NewMail] | Callable[[Complaint], Sequence[NewMail]] = ()
                                 ) -> tuple[Complaint, bool]:
        """File a complaint at stage ``registration`` (numbered by the store), with its history item, the
        registration task for its responsible and the e-mails (or a function that renders them from the numbered
        complaint, called inside the transaction); (complaint, True). A ``new.idempotency_key`` already
        used returns that complaint and False, writing nothing."""
        ...

    async def commit_complaint(self, change: ComplaintChange) -> Complaint:
        """Write one change (see :class:`cti.complaints.ComplaintChange`); the complaint as stored now (revision + 1).
        Raises ``ComplaintNotFound``, ``ComplaintChanged``."""
        ...

    async def get_complaint(self, complaint_id: int) -> Complaint:
        """With its calls, action plan and attachments. Raises ``ComplaintNotFound``."""
        ...

    async def list_complaints(self, flt: ComplaintFilter) -> list[Complaint]:
        """Newest first."""
        ...

    async def count_complaints(self, flt: ComplaintFilter) -> int: ...

    async def complaint_history(self, complaint_id: int) -> list[HistoryItem]:
        """Oldest first."""
        ...

    async def add_complaint_note(self, complaint_id: int, *, action: str, details: dict[str, Any], by: str,
                                 at: float, mails: Sequence[NewMail] = ()) -> HistoryItem:
        """A history item that changes nothing else (a question to a colleague, the answer): with its e-mails."""
        ...

    async def complaint_tasks(self, *, assignee: str | None = None, complaint_id: int | None = None,
                              open_only: bool = True) -> list[Task]:
        """Tasks, the earliest due first."""
        ...

    async def overdue_tasks(self, now: float) -> list[Task]:
        """Open tasks due before ``now`` and not yet escalated."""
        ...

    async def escalate_task(self, task_id: int, *, at: float, mails: Sequence[NewMail] = ()) -> Task | None:
        """Mark an overdue task escalated (once: None when another node did, or the task is no longer open) with a
        history item (``escalated`` by ``system``: the task's id, stage, assignee and deadline) and the managers'
        e-mails. Raises ``ComplaintNotFound`` (no such task)."""
        ...

    async def add_attachment(self, complaint_id: int, *, file_name: str, content_type: str, size: int,
                             stored_as: str, by: str, at: float) -> Attachment:
        """Keep a file's record with its history item (``attached``: id, file name, size), in one transaction.
        Raises ``ComplaintNotFound``."""
        ...

    async def get_attachment(self, attachment_id: int) -> Attachment:
        """Raises ``ComplaintNotFound``."""
        ...


class Outbox(Protocol):
    """The durable e-mail outbox (``cti.complaints.OutgoingMail``): written with the change it tells of, sent by the
    mailer with retries and back-off, one node at a time per mail."""

    async def queue_mail(self, mail: NewMail, *, at: float) -> OutgoingMail: ...

    async def take_mail(self, *, now: float, lease_seconds: float) -> OutgoingMail | None:
        """The oldest mail due (not sent, not given up, ``next_try_at`` passed), leased to this caller until
        ``now + lease_seconds`` (its ``next_try_at`` moves there), so two nodes never send it at once."""
        ...

    async def mail_sent(self, mail_id: int, *, at: float) -> None:
        """Count the try that delivered it; a mail is sent once (a second report keeps the first time). Raises
        ``MailNotFound``."""
        ...

    async def mail_failed(self, mail_id: int, error: str, *, at: float, next_try_at: float | None) -> OutgoingMail:
        """Count a failed try: retry at ``next_try_at``, or give up (None) with the error kept. Raises
        ``MailNotFound``."""
        ...

    async def list_mails(self, *, pending_only: bool = False, limit: int = 200) -> list[OutgoingMail]:
        """Newest first (the admin's view of the outbox)."""
        ...


class CrmItemNotFound(StoreError, KeyError):
    """No request of the CRM outbox has this id."""

    def __init__(self, item_id: int) -> None:
        super().__init__(item_id)
        self.item_id = item_id


class CrmOutbox(Protocol):
    """The durable CRM outbox (issue 16, ``cti.crm``): each CRM request is written, with its call's planner state,
    before it is sent; sent in order per call, one node at a time per request, retried, given up.

    Ordering: a call's requests carry ``seq`` 1, 2, ... in the order queued. ``take_crm`` hands out a request only
    when every earlier request of its call is sent or given up, so two requests of one call are never in flight
    together, while requests of different calls go in parallel.
    """

    async def queue_crm(self, crm: CrmName, call: str, state: dict[str, Any] | None,
                        requests: Sequence[CrmRequest], *, at: float) -> list[CrmItem]:
        """In one transaction: the call's planner state replaced by ``state`` (None: left as it is) and
        ``requests`` appended to its sequence, due at once. Returns the new items."""
        ...

    async def crm_call_state(self, crm: CrmName, call: str) -> dict[str, Any] | None:
        """The planner state kept for ``call`` (None: a call this CRM has not seen)."""
        ...

    async def crm_call_answers(self, crm: CrmName, call: str) -> dict[str, Any]:
        """The values the CRM's answers gave for ``call`` so far (every sent item's ``answer`` merged in ``seq``
        order): what ``{"$remote": name}`` references read."""
        ...

    async def take_crm(self, crm: CrmName, *, now: float, lease_seconds: float, limit: int = 1) -> list[CrmItem]:
        """Up to ``limit`` requests due (pending, ``next_try_at`` passed, every earlier request of their call done),
        oldest first and at most one per call, leased until ``now + lease_seconds`` (their ``next_try_at`` moves
        there and ``attempts`` counts the try), so another node or a second taker does not send them meanwhile. A
        taker that dies leaves the lease to run out: the request is taken again."""
        ...

    async def crm_sent(self, item_id: int, answer: dict[str, Any], *, at: float) -> None:
        """The CRM accepted the request: kept with what its answer gave (``answer``, merged into the call's
        answers). A second report keeps the first. Raises ``CrmItemNotFound``."""
        ...

    async def crm_failed(self, item_id: int, error: str, *, at: float, next_try_at: float | None) -> CrmItem:
        """A try failed: retry at ``next_try_at``, or give up (None), the error kept (cut to 2000 characters).
        Raises ``CrmItemNotFound``."""
        ...

    async def crm_retry(self, item_id: int, *, at: float) -> CrmItem:
        """A given-up request queued again (``cti crm retry``, the admin's «Повторить»): pending, due at ``at``, its
        tries and last error kept. A request that is not given up is returned as it is. Raises ``CrmItemNotFound``."""
        ...

    async def crm_status(self) -> list[CrmStatus]:
        """Per CRM that has items: pending, given up, sent, the oldest pending's time, the last error."""
        ...

    async def list_crm_items(self, *, crm: CrmName | None = None, call: str | None = None,
                             state: Literal["pending", "sent", "failed"] | None = None,
                             limit: int = 200) -> list[CrmItem]:
        """Newest first: the admin's view (``cti crm status --failed``), a call's sequence (``call``: oldest first,
        by ``seq``)."""
        ...

    async def crm_items_after(self, crm: CrmName, after_id: int, *, limit: int = 100) -> list[CrmItem]:
        """Items of ``crm`` with an id above ``after_id``, oldest first, whatever their state: the 1C pull feed
        (``GET /api/crm/1c/events?after=``), whose reader keeps its own cursor."""
        ...

    async def crm_value(self, crm: CrmName, name: str) -> dict[str, Any] | None:
        """A value a connector keeps (tokens, the app's settings, a delivery already handled)."""
        ...

    async def put_crm_value(self, crm: CrmName, name: str, value: dict[str, Any], *,
                            expect: dict[str, Any] | None = None, only_new: bool = False) -> bool:
        """Keep ``value`` under ``name``; atomic: with ``expect``, only if the value kept is still ``expect``
        (a rotated refresh token replaced by one node only); with ``only_new``, only if nothing is kept under
        ``name`` yet (a click-to-call event delivered twice is handled once). False when not written."""
        ...


class Reports(Protocol):
    """The reports managers read (issue 13, ``cti/reports.py``): PBX vs registered, contact statistics, the funnel,
    missed calls. One call per report; the panel, its CSV and ``cti report`` print what it returns. Every statement
    reads an index made for it (``store/reports.py``), so a report costs the rows of its period."""

    async def report(self, name: ReportName, query: ReportQuery) -> Report:
        """The report ``name`` over ``query``'s period, PBXs and agent; ``ValueError`` for an unknown name."""
        ...

    async def keep_report_days(self, tz: tzinfo, *, rebuild: bool = False) -> bool:
        """Keep the reports' day counts in ``tz`` (a named zone; ``ValueError`` for a fixed offset): the reports in
        that zone then read a period's whole days from them (``store/report_days.py``). Told another zone than the
        one kept, or ``rebuild``, the store counts them again from the rows, in one transaction on the writer (seconds
        for a year: the daemon does it at start). True when it counted them again."""
        ...


class Store(StagedWrites, LiveJournal, Journal, Register, SharedRegister, Users, Directory, CallerLookups,
            Alerts, ScriptRuns, ContactRegister, Reminders, Reports, Transcriptions, QaReviews, Complaints, Outbox,
            CrmOutbox, Cluster, Protocol):
    """The persistence contract of CTI Companion: every concern above, on one backing database.

    Life cycle: ``store.open_store(settings, region=...)`` gives a ready store (``await`` it, or ``async with``
    it); run ``run_writer()`` in the daemon's TaskGroup; cancel it, then ``close()`` (or leave the block).
    """

    async def close(self) -> None:
        """Flush and release the store. Further use raises ``StoreClosed``."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


#: The earlier name of the whole contract, kept for the modules typed against it.
CallStore: TypeAlias = Store
