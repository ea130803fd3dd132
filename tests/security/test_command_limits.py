"""Call control is rate-limited per user (issue 9, finding 11): a burst cannot flood the PBX with actions.

``[http] command_burst`` commands at once, then ``command_rate`` per second, counted per user whatever the
number of sockets or logins. A command over the limit gets a ``rate_limited`` error that says when to try
again, and no AMI action is sent for it. Ping, subscribe and other users are not affected.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from asterisk.messages import AmiMessage
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import WsClient

TRANSFER = "13-blind-transfer-redirect"
BURST, RATE = 5, 0.5
ORIGINATE = {"type": "originate", "number": "89161234567"}


def originates(env: PanelEnv) -> list[AmiMessage]:
    return [a.message for a in env.replay.received_actions if a.message.action == "Originate"]


async def burst(client: WsClient, count: int, request: dict[str, Any]) -> list[dict[str, Any]]:
    """``count`` requests as fast as the socket takes them, a few in flight at a time (under the server's
    per-socket cap on requests in flight, so every answer is about the rate)."""
    in_flight = asyncio.Semaphore(8)

    async def one() -> dict[str, Any]:
        async with in_flight:
            return await client.request(request)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def test_a_burst_from_one_user_over_two_sockets_reaches_the_pbx_only_as_far_as_the_bucket_allows() -> None:
    async with panel_env([TRANSFER], http_extra=f"command_burst = {BURST}\ncommand_rate = {RATE}") as env:
        tab1, tab2 = await WsClient.connect(env, "anna"), await WsClient.connect(env, "anna")
        oleg = await WsClient.connect(env, "oleg")
        for client in (tab1, tab2, oleg):
            await client.wait_for("state")
        started = time.monotonic()
        answers = [a for part in await asyncio.gather(burst(tab1, 50, ORIGINATE), burst(tab2, 50, ORIGINATE))
                   for a in part]
        elapsed = time.monotonic() - started

        replies = [a for a in answers if a["type"] == "reply"]
        limited = [a for a in answers if a["type"] == "error" and a["code"] == "rate_limited"]
        assert len(replies) + len(limited) == 100, [a for a in answers if a not in replies and a not in limited][:3]
        # The burst, plus what the bucket refilled while the burst lasted; not one more.
        assert BURST <= len(replies) <= BURST + RATE * elapsed, (len(replies), elapsed)
        # No action was sent for a refused command.
        assert len(originates(env)) == len(replies)
        wait = re.search(r"try again in (\d+) s", limited[-1]["message"])
        assert wait is not None, limited[-1]["message"]
        assert 1 <= int(wait.group(1)) <= int(1 / RATE) + 1

        # Another user has a bucket of their own.
        before = len(originates(env))
        theirs = await burst(oleg, BURST, ORIGINATE)
        assert [a["type"] for a in theirs] == ["reply"] * BURST, theirs
        assert len(originates(env)) == before + BURST

        # Pause is call control too; ping and subscribe are not.
        pause = await tab1.request({"type": "queue.pause", "reason": "break"})
        assert pause["type"] == "error" and pause["code"] == "rate_limited", pause
        assert not [a for a in env.replay.received_actions if a.message.action == "QueuePause"]
        assert (await tab1.request({"type": "ping"}))["type"] == "reply"
        assert (await tab2.request({"type": "subscribe", "scope": "own"}))["type"] == "reply"
        assert tab1.closed is None and tab2.closed is None
