"""The ``next`` / ``?after=`` tokens of the HTTP listings: a place in a listing's order, opaque to clients.

Why: ``offset`` paging costs every row it skips (page 1,000 of a year's journal reads 100,000 rows first) and
shifts when rows arrive meanwhile (a new call at the top pushes a row of page 1 onto page 2: seen twice). A
listing answers with ``next``, the place of its last row in the listing's order (``store.repository.CallKey``:
started_at, linkedid and pbx; ``MissedKey``: missed_at and id); ``?after=<next>`` is the next page, one indexed query
from that place on, whatever its depth and whatever was saved meanwhile.

A token is the place as compact JSON with the listing it belongs to, and a checksum, in URL-safe base64. The
checksum is keyed but not secret: it makes a token that was altered, cut short or made up a clear 400 instead of
a page from somewhere else. It needs no secrecy: a token only names a place in an order, and what a user may
read is decided by their role and filters on every request, never by the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from typing import Literal

from cti.contacts_register import ContactKey
from cti.records import DEFAULT_PBX
from store.repository import CallKey, GroupKey, MissedKey

from .api_models import SQLITE_MAX_INT, BadRequest

#: Which listing (and in which order) a token belongs to: ``/api/calls`` is newest first, ``/api/missed`` oldest.
Listing = Literal["calls", "missed", "missed/groups", "contacts/register"]
_KEY = b"cti-companion/listing-cursor/v1"
_CHECK_BYTES = 8
#: Far beyond any token the daemon makes (a linkedid is a few dozen characters); longer is refused unread.
MAX_TOKEN_CHARS = 2048
_ORDER: dict[Listing, str] = {"calls": "calls:newest", "missed": "missed:oldest",
                              "missed/groups": "missed-groups:newest", "contacts/register": "contacts:newest"}


def _check(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, key=_KEY, digest_size=_CHECK_BYTES).digest()


def _encode(listing: Listing, at: float, key: str | int, *more: str) -> str:
    payload = json.dumps([_ORDER[listing], at, key, *more], separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(payload + _check(payload)).rstrip(b"=").decode("ascii")


def call_token(key: CallKey) -> str:
    """The ``next`` of a ``/api/calls`` page whose last row is at ``key``."""
    return _encode("calls", key.started_at, key.linkedid, key.pbx)


def missed_token(key: MissedKey) -> str:
    """The ``next`` of a ``/api/missed`` page whose last entry is at ``key``."""
    return _encode("missed", key.missed_at, key.id)


def _decode(listing: Listing, token: str) -> tuple[float, object, list[object]]:
    """The place a token names, once it is shown to be one the daemon made for this listing; BadRequest if not."""
    altered = BadRequest("after: not a cursor this server gave (altered or cut short?): pass the `next` of the "
                         "previous answer as it is, or leave `after` out to start from the first page")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise altered
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise altered from None
    payload, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if len(raw) <= _CHECK_BYTES or not hmac.compare_digest(check, _check(payload)):
        raise altered
    try:
        order, at, key, *more = json.loads(payload)
    except (ValueError, TypeError):
        raise altered from None
    if order != _ORDER[listing]:
        other = next((name for name, o in _ORDER.items() if o == order), None)
        raise BadRequest(f"after: this cursor is a place in /api/{other}, not in /api/{listing}" if other
                         else "after: a cursor of an unknown listing")
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise altered
    try:
        place = float(at)
    except OverflowError:  # an integer beyond any float
        raise altered from None
    if not math.isfinite(place):
        raise altered
    return place, key, more


def after_call(token: str | None) -> CallKey | None:
    """``?after=`` of ``/api/calls`` as a place in the journal; None when absent. BadRequest when it is not one."""
    if not token:
        return None
    at, key, more = _decode("calls", token)
    # A cursor made before calls had a PBX names a place among the default PBX's calls.
    pbx = more[0] if len(more) == 1 else DEFAULT_PBX if not more else None
    if not isinstance(key, str) or not isinstance(pbx, str):
        raise BadRequest("after: not a cursor of /api/calls")
    return CallKey(at, key, pbx)


def after_missed(token: str | None) -> MissedKey | None:
    """``?after=`` of ``/api/missed`` as a place in the register; None when absent. BadRequest when it is not one."""
    if not token:
        return None
    at, key, more = _decode("missed", token)
    if more or isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= SQLITE_MAX_INT:
        raise BadRequest("after: not a cursor of /api/missed")
    return MissedKey(at, key)


def group_token(key: GroupKey) -> str:
    """The ``next`` of a ``/api/missed/groups`` page whose last group is at ``key`` (its newest entry's place)."""
    return _encode("missed/groups", key.last_at, key.last_id)


def after_group(token: str | None) -> GroupKey | None:
    """``?after=`` of ``/api/missed/groups``; None when absent. BadRequest when it is not one."""
    if not token:
        return None
    at, key, more = _decode("missed/groups", token)
    if more or isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= SQLITE_MAX_INT:
        raise BadRequest("after: not a cursor of /api/missed/groups")
    return GroupKey(at, key)


def contact_token(key: ContactKey) -> str:
    """The ``next`` of a ``/api/contacts/register`` page whose last contact is at ``key``."""
    return _encode("contacts/register", key.at, key.id)


def after_contact(token: str | None) -> ContactKey | None:
    """``?after=`` of ``/api/contacts/register``; None when absent. BadRequest when it is not one."""
    if not token:
        return None
    at, key, more = _decode("contacts/register", token)
    if more or isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= SQLITE_MAX_INT:
        raise BadRequest("after: not a cursor of /api/contacts/register")
    return ContactKey(at, key)
