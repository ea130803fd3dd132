"""The event messages, built as wire dicts without pydantic (ui_bridge/outgoing.py), keep the protocol.

What a client receives from real calls (replay PBX → daemon → panel → WebSocket) validates against the
published JSON Schema (docs/protocol.schema.json, what ``cti schema`` prints) and is exactly what the
pydantic model of its type would send; the cached time formatting writes what ``iso_time`` writes.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from cti.records import iso_time
from tests.panel_env import panel_env
from tests.traces import REPO, TRACES, load_truth
from tests.ui_bridge.wsclient import WsClient
from ui_bridge import messages as m
from ui_bridge.wire_time import WireTime

#: A transfer, a queue abandoned, a withheld Cyrillic caller, a ring group nobody answers, a paused member:
#: every event message type, from calls that ring, are answered, transferred, missed.
TRACES_USED = ["13-blind-transfer-redirect", "08-queue-abandon", "23-cyrillic-anonymous", "12-ringgroup-noanswer",
               "32-queue-paused-member"]
EVENT_TYPES = {"call.ringing", "call.leg_ended", "call.answered", "call.transferred", "call.ended", "agent.state"}


async def test_every_event_message_a_client_gets_validates_against_the_published_schema() -> None:
    schema = json.loads((REPO / "docs" / "protocol.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    calls = sum(len(load_truth(TRACES / t)) for t in TRACES_USED)
    async with panel_env(TRACES_USED, speed=0) as env:
        admin = await WsClient.connect(env, "admin")
        await admin.wait_for("state")
        env.start_calls()
        await env.wait_for(lambda: len(admin.of_type("call.ended")) >= calls, 60, "every call to end")
        await admin.close()
    received = [msg for _, msg in admin.received]
    assert {msg["type"] for msg in received} >= EVENT_TYPES
    for msg in received:
        errors = [e.message for e in validator.iter_errors(msg)]
        assert not errors, (msg, errors)
        # The pydantic model of its type reads it and would have sent the very same object.
        assert m.SERVER_ADAPTER.validate_python(msg).model_dump(mode="json") == msg


ZONES: list[tzinfo | None] = [None, UTC, ZoneInfo("Europe/Moscow"), ZoneInfo("America/New_York"),
                              ZoneInfo("Australia/Lord_Howe")]


@pytest.mark.parametrize("tz", ZONES, ids=str)
def test_message_times_are_iso_time_to_the_millisecond_across_dst(tz: tzinfo | None) -> None:
    wire = WireTime(tz)
    rng = random.Random(10)
    # around now, DST changes (US 2024-03-10, 2023-11-05, Lord Howe 2025-04-06), the epoch, Y2K
    bases = [1795480456, 1710054000, 1699164000, 1743861600, 0, 946684800]
    fractions: list[Any] = [0.0, 0.0009995, 0.9999995, 0.5]
    for _ in range(20_000):
        epoch = rng.choice(bases) + rng.randint(-7200, 7200) + rng.choice([rng.random(), *fractions])
        assert wire(epoch) == iso_time(epoch, tz), epoch
    assert wire(None) is None
