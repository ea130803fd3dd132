"""The call-back rule: which finished call closes which open missed-call entries by itself.

Pure (no I/O): every store applies the same decision, so a SQLite and a PostgreSQL store cannot drift apart on
what the register shows, and the rule is tested here with plain values. The rule, as the register's users
know it (``docs/missed-calls.md``):

* an **answered outbound** call closes the open entries of the number it called (``closed_by='callback'``:
  the customer was called back);
* an **answered inbound** call closes its caller's open entries (``'called_again'``: the customer called
  again and was taken);
* an unanswered call, an internal call or a withheld number closes nothing;
* a call never closes an entry it opens itself (any of its linkedids), and only entries saved before it;
* the entry is closed at the moment the customer was reached (the call's answer time);
* the register is per PBX: a call closes only the entries of its own PBX (``pbx``), since the same number
  missed on one site and reached by another site's agent is still owed a call-back by the first.

Numbers are compared as ``cti.phones.normalize_number`` keys, so ``8 916 123-45-67`` calls back
``+7 (916) 1234567``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from cti.phones import normalize_number
from cti.records import DEFAULT_PBX, CallRecord, ClosedBy, MissedEntry


@dataclass(frozen=True, slots=True)
class CallBack:
    """A finished call's claim on the register: the open entries of ``number_key`` it closes, and how."""

    linkedid: str  # the closing call (``closed_linkedid`` of the entries it closes)
    number_key: str  # whose open entries it closes
    closed_by: ClosedBy
    at: float  # ``closed_at`` of the entries it closes
    own_linkedids: frozenset[str]  # entries of these calls are the call's own: never closed by it
    pbx: str = DEFAULT_PBX  # the PBX of the call: only that PBX's entries are closed (a linkedid is per PBX)


def call_back_of(record: CallRecord, opens: MissedEntry | None = None, *, region: str = "RU") -> CallBack | None:
    """What ``record`` closes when it is saved (None: nothing); ``opens`` is the entry the call itself opens."""
    if not record.answered:
        return None
    closed_by: ClosedBy
    if record.direction == "outbound":
        key, closed_by = normalize_number(record.called, region), "callback"
    elif record.direction == "inbound":
        key, closed_by = normalize_number(record.caller, region), "called_again"
    else:
        return None
    if key is None:  # a withheld number is nobody's: it closes nothing
        return None
    own = {record.linkedid, *record.linkedids}
    if opens is not None:
        own.add(opens.linkedid)
    return CallBack(linkedid=record.linkedid, number_key=key, closed_by=closed_by, at=closing_time(record),
                    own_linkedids=frozenset(own), pbx=record.pbx)


def closing_time(record: CallRecord) -> float:
    """When a call-back closes an entry: the moment the customer was reached."""
    if record.answered_at is not None:
        return record.answered_at
    return record.ended_at if record.ended_at is not None else record.started_at


def closes(call_back: CallBack, entry: MissedEntry) -> bool:
    """Whether ``call_back`` closes ``entry`` (an entry saved before the call, of any PBX)."""
    return (entry.status == "open" and entry.pbx == call_back.pbx and entry.caller_key is not None
            and entry.caller_key == call_back.number_key and entry.linkedid not in call_back.own_linkedids)


def closed_by_call(call_back: CallBack, entries: Iterable[MissedEntry]) -> list[MissedEntry]:
    """The entries ``call_back`` closes among ``entries``, in their order, as they are once closed."""
    return [close(call_back, entry) for entry in entries if closes(call_back, entry)]


def close(call_back: CallBack, entry: MissedEntry) -> MissedEntry:
    """``entry`` as ``call_back`` leaves it: closed, by that call, at the moment the customer was reached."""
    return replace(entry, status="closed", closed_at=call_back.at, closed_by=call_back.closed_by,
                   closed_linkedid=call_back.linkedid)
