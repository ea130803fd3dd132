"""The references a planner leaves in a request (``cti.crm``), filled in at the moment it is sent.

``{"$remote": "call_id"}`` becomes the value an earlier answer of the call gave under that name (Bitrix24's
``CALL_ID``); ``{"$recording": {"pbx": ..., "linkedid": ..., "index": 0}}`` a signed link to that recording,
signed now so it expires from the moment the CRM gets it. A reference to a value no answer gave raises
:class:`MissingValue`: the request that would have given it was given up, so this one cannot be sent either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .connector import RecordingLinks


class MissingValue(LookupError):
    """A ``$remote`` reference to a value the call's answers do not hold."""


def resolve(value: Any, answers: Mapping[str, Any], links: RecordingLinks) -> Any:
    """``value`` with every reference in it replaced (dicts and lists walked; anything else as it is)."""
    if isinstance(value, dict):
        if set(value) == {"$remote"}:
            name = value["$remote"]
            if name not in answers:
                raise MissingValue(f"no answer of the call gave {name!r}")
            return answers[name]
        if set(value) == {"$recording"}:
            where = value["$recording"]
            return links.url(str(where["pbx"]), str(where["linkedid"]), int(where["index"]))
        return {k: resolve(v, answers, links) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, answers, links) for v in value]
    return value


def without_recordings(value: Any) -> Any:
    """``value`` with every recording reference replaced by None (no link can be made: ``[crm] public_url`` unset)."""
    if isinstance(value, dict):
        if set(value) == {"$recording"}:
            return None
        return {k: without_recordings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_recordings(v) for v in value]
    return value
