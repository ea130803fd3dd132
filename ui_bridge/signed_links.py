"""Signed, expiring links to a call's recording, handed to CRMs (issue 16): a CRM never gets a path or a URL that
works without the signature.

A link is ``{[crm] public_url}/crm/recording/{token}``. The token names the recording (PBX, linkedid, the index of
the recording in the journal's list) and when the link stops working, signed with HMAC-SHA256; the route
(``ui_bridge/routes/crm_links.py``) serves the file to a valid, unexpired token without a login. The token is
URL-safe (base64url and one dot) and bounded (:data:`MAX_TOKEN`): ``<body>.<signature>``, the body the JSON list
``[pbx, linkedid, index, expires]``.

The key: 32 random bytes generated once and kept in the store (``put_crm_value(..., only_new=True)``, so the first
node to start writes it and every other node and every restart reads the same one): links handed out before a
restart keep working, and a link signed on one node is served by any. It never leaves the store and this object.
Someone who can read the store can sign links; they can read the recordings already.

When no link can be made (no ``[crm] public_url``, or the key not yet loaded) :meth:`SignedLinks.url` raises
:class:`NoRecordingLink`: a connector then sends the call without its recording link rather than an unsigned one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cti.crm import CrmName
from store.repository import Store

#: Where the key is kept: ``crm_value(KEY_CRM, KEY_NAME)``. The outbox's values are per CRM; the links are the push's
#: as a whole, so the key sits under the generic webhook's name (the CRM every other one falls back to) and a name
#: no connector uses.
KEY_CRM: CrmName = "webhook"
KEY_NAME = "recording-links.key"
#: The route a token is served at, under ``public_url``.
LINK_PATH = "/crm/recording/"
#: The longest token read (a real one is about 200 characters); a longer one is refused before it is decoded.
MAX_TOKEN = 512
#: What a token may hold: base64url's alphabet and the dot between body and signature.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{43}")
#: Mixed into every signature: a key used for something else some day can never make a recording link.
_PURPOSE = b"cti-companion recording link v1\n"


class NoRecordingLink(RuntimeError):
    """No link can be made: no ``[crm] public_url``, or the key is not loaded yet. The connector leaves the link
    out."""


class BadLink(ValueError):
    """A token that is not one this daemon signed (altered, cut, made up): 403."""


class ExpiredLink(ValueError):
    """A token this daemon signed whose time is up: 410."""


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a valid token names."""

    pbx: str
    linkedid: str
    index: int
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignedLinks:
    """Makes and reads recording links (``companion.crm.connector.RecordingLinks``).

    ``secret``: the key, or None until :meth:`load` reads it from the store. ``public_url``: ``[crm] public_url``
    (None: no links). ``hours``: ``[crm] link_hours``. ``clock``: seconds since the epoch (the expiry is wall time:
    the CRM that fetches the link may be on another machine).
    """

    def __init__(self, secret: bytes | None, public_url: str | None, hours: float,
                 clock: Callable[[], float]) -> None:
        self.secret = secret
        self.public_url = public_url.rstrip("/") if public_url else None
        self.hours = hours
        self.clock = clock

    async def load(self, store: Store) -> None:
        """Read the key from the store, generating it first if no node has yet (idempotent)."""
        if self.secret is not None:
            return
        await store.put_crm_value(KEY_CRM, KEY_NAME, {"key": _b64(secrets.token_bytes(32))}, only_new=True)
        kept = await store.crm_value(KEY_CRM, KEY_NAME)
        if kept is None or not isinstance(kept.get("key"), str):
            raise RuntimeError("the recording links' key could not be kept in the store")
        self.secret = _unb64(kept["key"])

    # -- making --------------------------------------------------------------------------------------------------

    def url(self, pbx: str, linkedid: str, index: int) -> str:
        """The link to the ``index``-th recording of the call, valid for ``hours`` from now."""
        if self.public_url is None:
            raise NoRecordingLink("no [crm] public_url: the CRMs get no recording links")
        return f"{self.public_url}{LINK_PATH}{self.token(pbx, linkedid, index)}"

    def token(self, pbx: str, linkedid: str, index: int, *, expires: float | None = None) -> str:
        if self.secret is None:
            raise NoRecordingLink("the recording links' key is not loaded yet")
        if expires is None:
            expires = self.clock() + self.hours * 3600
        body = _b64(json.dumps([pbx, linkedid, int(index), math.ceil(expires)], separators=(",", ":"),
                               ensure_ascii=True).encode("ascii"))
        return f"{body}.{self._signature(body)}"

    # -- reading -------------------------------------------------------------------------------------------------

    def read(self, token: str) -> LinkTarget:
        """What ``token`` names; :class:`BadLink` unless this daemon signed it, :class:`ExpiredLink` when it did and
        its time is up. The signature is checked before anything in the body is believed."""
        if self.secret is None:
            raise NoRecordingLink("the recording links' key is not loaded yet")
        if len(token) > MAX_TOKEN or not _TOKEN.fullmatch(token):
            raise BadLink("not a recording link")
        body, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._signature(body)):
            raise BadLink("the link's signature does not match")
        try:
            fields: Any = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            raise BadLink("not a recording link") from None
        if not (isinstance(fields, list) and len(fields) == 4 and isinstance(fields[0], str)
                and isinstance(fields[1], str) and all(type(v) is int for v in fields[2:])):
            raise BadLink("not a recording link")
        pbx, linkedid, index, expires = fields
        if self.clock() >= expires:
            raise ExpiredLink("the link has expired: ask the CRM for the call again")
        return LinkTarget(pbx=pbx, linkedid=linkedid, index=index, expires=float(expires))

    def _signature(self, body: str) -> str:
        assert self.secret is not None
        return _b64(hmac.new(self.secret, _PURPOSE + body.encode("ascii"), hashlib.sha256).digest())
