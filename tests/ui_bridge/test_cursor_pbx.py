"""The ``/api/calls`` cursor names a place in the journal's order, which ends with the PBX (issue 11): a token
carries it, and a token made before calls had a PBX still decodes, as a place among the default PBX's calls."""

from __future__ import annotations

import pytest

from cti.records import DEFAULT_PBX
from store.repository import CallKey
from tests.store.builders import T0
from ui_bridge import cursors
from ui_bridge.api_models import BadRequest


def test_a_call_cursor_carries_the_pbx_of_its_place() -> None:
    for key in (CallKey(T0, "1700000000.5", "spb"), CallKey(T0 + 0.25, "1700000000.5"), CallKey(T0, "x", "Пермь")):
        assert cursors.after_call(cursors.call_token(key)) == key
    assert cursors.call_token(CallKey(T0, "1", "a")) != cursors.call_token(CallKey(T0, "1", "b"))


def test_a_cursor_made_before_pbxs_still_decodes_as_the_default_pbx() -> None:
    old = cursors._encode("calls", T0, "1700000000.5")  # the v1 payload: [order, started_at, linkedid]
    assert cursors.after_call(old) == CallKey(T0, "1700000000.5", DEFAULT_PBX)


def test_a_cursor_with_a_pbx_that_is_not_text_or_too_much_is_refused() -> None:
    for token in (cursors._encode("calls", T0, "1", 5), cursors._encode("calls", T0, "1", "a", "b")):  # type: ignore[arg-type]
        with pytest.raises(BadRequest, match="not a cursor of /api/calls"):
            cursors.after_call(token)
