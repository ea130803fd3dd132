"""One request of a connector over HTTP, and what not getting an answer means: the same for every CRM.

A connector posts with the daemon's shared ``httpx.AsyncClient`` (``ConnectorDeps.http``), never following a
redirect (a CRM that moved is told to the admin, not followed with our credentials). No answer at all — a timeout,
a refused or dropped connection — is always a :class:`~companion.crm.connector.Retry` with the words an admin reads
in ``cti crm status``; an answer is the connector's to read by its CRM's meaning. A ``Retry-After`` is read here once.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .connector import Retry

#: The most of a refusal's body kept as the request's error.
ERROR_BODY_CHARS = 300
#: A ``Retry-After`` longer than this (seconds) is not believed beyond it (the sender's give-up still applies).
MAX_RETRY_AFTER = 3600.0


async def post(http: httpx.AsyncClient, url: str, *, who: str, seconds: float,
               hide: Callable[[str], str] = str, **kwargs: Any) -> httpx.Response | Retry:
    """``POST url`` (``kwargs``: ``json``, ``content``, ``headers``, ``auth``...), or the Retry of no answer, its
    words starting with ``who`` (the CRM, or its URL). ``hide`` takes out of a network error what must not be
    shown (a token in the URL). ``seconds``: httpx's timeout of each step (connect, write, read)."""
    try:
        return await http.post(url, timeout=seconds, follow_redirects=False, **kwargs)
    except httpx.TimeoutException:
        return Retry(f"{who}: no answer within {seconds:g} s")
    except httpx.TransportError as exc:
        return Retry(f"{who}: cannot connect ({type(exc).__name__}: {hide(str(exc)) or 'no details'})")


def answer_text(response: httpx.Response, limit: int = ERROR_BODY_CHARS) -> str:
    """The start of an answer's body on one line: what a refusal's error keeps of it."""
    return " ".join(response.text[:limit].split())


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - now, 0.0), MAX_RETRY_AFTER)
