"""JSON from clients, read strictly: bounded nesting, no lone surrogates, no NaN.

Why not ``json.loads``: its decoder recurses, so 16 KB of ``[[[…`` raised RecursionError out of the
WebSocket handler (the socket dropped without a close frame) and made ``/api/login`` answer 500; and it
turns ``"\\ud800"`` into a string that cannot be written back as UTF-8, so the error reply quoting it failed
too. pydantic's own parser (``pydantic_core.from_json``, jiter) refuses both: nesting deeper than
``MAX_DEPTH`` and any unpaired UTF-16 surrogate escape, anywhere (keys included). A client message never
needs more than a few levels.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic_core import from_json

#: jiter's own bound on nesting (arrays and objects together).
MAX_DEPTH = 200
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class BadJson(ValueError):
    """The text is not JSON we accept; ``str()`` says why, in words for the client."""


def parse_json(data: str | bytes) -> Any:
    """The value of a JSON text; BadJson if it is malformed, nested too deeply or holds a lone surrogate."""
    try:
        return from_json(data, allow_inf_nan=False, cache_strings=False)
    except ValueError as exc:
        raise BadJson(_explain(str(exc), data)) from None


def _explain(error: str, data: str | bytes) -> str:
    if "recursion limit" in error:
        return f"not accepted: JSON nested too deeply (at most {MAX_DEPTH} levels)"
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    if ("surrogate" in error or "hex escape" in error) and _SURROGATE_ESCAPE.search(text):
        return r"not accepted: a string holds a lone surrogate (\ud800-\udfff without its pair); send Unicode text"
    return f"not a JSON text: {error}"
