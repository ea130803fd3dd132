"""A daemon SIGKILLed in the middle of its CRM outbox, then started again: every call's sequence complete, in its
order, nothing doubled (issue 16: "a daemon SIGKILL mid-outbox: afterwards every call's sequence is complete, in
order, nothing doubled").

A real ``cti run`` process pushes four replayed calls (a ring-all queue call, an abandoned one, a transfer, a
click-to-call: 21 events) to the generic webhook's receiver (``tests/crm/webhook_server.py``, which checks each
signature and deduplicates by ``X-CTI-Delivery``). After some events the receiver takes each request and then holds
its answer: the daemon has requests in flight, delivered but not answered, when it is killed with SIGKILL. Started
again, it takes them again once their lease has run out and sends them again, with the same delivery id and the
same body, which the receiver recognises; then the rest. What the receiver kept is each call's events exactly once,
in the call's order (``seq`` 1, 2, ...), and the same as the outbox planned; every repeat carried the id and body of
the first delivery.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from asyncio.subprocess import DEVNULL
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from asterisk.replay import ReplayPbx
from tests.conftest import UNIT
from tests.crm.local_server import serving
from tests.crm.webhook_server import PATH, WebhookReceiver
from tests.daemon.conftest import CTI, wait_until, write_config
from tests.traces import REPO, TRACES

SECRET = "kill-test-secret-Ж"
CALLS = ["07-queue-ringall-answered", "08-queue-abandon", "13-blind-transfer-redirect", "16-click-to-call-answered"]
#: The events of those calls the webhook gets: 7 + 7 + 5 + 3 (the click-to-call: dialing, answered, ended).
EVENTS = 22
#: The receiver answers this many events at once, then holds its answers (the daemon has requests in flight).
ANSWERED_BEFORE_HOLD = 8


class HoldingReceiver:
    """The webhook receiver, with every body kept per delivery id, and its answers held once :attr:`holding`."""

    def __init__(self) -> None:
        self.receiver = WebhookReceiver(SECRET)
        self.bodies: dict[str, list[bytes]] = {}
        self.release = asyncio.Event()
        #: Delivery ids whose answer was held (taken and kept by the receiver, the daemon never told).
        self.held: set[str] = set()
        self.app = Starlette(routes=[Route(PATH, self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        delivery = request.headers.get("x-cti-delivery", "")
        self.bodies.setdefault(delivery, []).append(await request.body())
        response = await self.receiver.receive(request)
        if len(self.receiver.events) > ANSWERED_BEFORE_HOLD and not self.release.is_set():
            self.held.add(delivery)
            await self.release.wait()
        return response


def outbox(db: Path) -> list[tuple[int, str, int, str, bool]]:
    """(id, call, seq, the event, sent) of every webhook request, read as another process would."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute("SELECT id, call, seq, payload, sent_at IS NOT NULL FROM crm_outbox "
                                "WHERE crm = 'webhook' ORDER BY call, seq").fetchall()
    except sqlite3.Error:
        return []
    return [(int(i), str(call), int(seq), str(json.loads(payload)["event"]), bool(sent))
            for i, call, seq, payload, sent in rows]


async def test_sigkill_mid_outbox_then_a_restart_delivers_each_call_once_in_order(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    holding = HoldingReceiver()
    receiver = holding.receiver
    async with asyncio.timeout(300 * UNIT), serving(holding.app) as server, \
            ReplayPbx([TRACES / name for name in CALLS], speed=0) as pbx:
        sections = {"crm": f"retry_first_seconds = 0.05\nretry_max_seconds = 0.2\nlease_seconds = {2 * UNIT:g}",
                    "crm.webhook": f'url = "{server.url}{PATH}"\nsecret = "{SECRET}"'}
        config = write_config(tmp_path, pbx.address[1], sections=sections)
        first = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                     stdout=DEVNULL, stderr=DEVNULL)
        try:
            # Killed with every request queued, some delivered, and some in flight: taken, their answer held.
            await wait_until(lambda: len(outbox(db)) == EVENTS and len(holding.held) >= 2, 120,
                             "the outbox full and requests in flight")
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        held_at_kill = set(holding.held)
        holding.release.set()  # the held answers go to a dead connection
        before = outbox(db)
        assert 0 < sum(sent for *_, sent in before) < EVENTS, before  # killed mid-outbox
        assert {str(i) for i, *_rest, sent in before if not sent} >= held_at_kill  # in flight: not marked sent

        second = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                      stdout=DEVNULL, stderr=sys.stderr)
        try:
            await wait_until(lambda: len(receiver.events) == EVENTS and all(sent for *_, sent in outbox(db)), 120,
                             "every event delivered and marked sent after the restart")
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30 * UNIT) == 0

    after = outbox(db)
    assert len(after) == EVENTS and receiver.bad_signatures == 0
    # Nothing doubled: each delivery id was kept once, and each repeat carried the first delivery's very body.
    assert len({body["delivery"] for body in receiver.events}) == EVENTS
    assert all(len(set(bodies)) == 1 for bodies in holding.bodies.values()), "a repeat with another body"
    repeated = {delivery for delivery, bodies in holding.bodies.items() if len(bodies) > 1}
    assert held_at_kill <= repeated and receiver.repeats >= len(held_at_kill)
    # Complete and in order: each call's events as the outbox planned them, in its sequence, each once.
    planned: dict[str, list[tuple[int, int, str]]] = {}
    for item_id, call, seq, event, _sent in after:
        planned.setdefault(call, []).append((item_id, seq, event))
    assert len(planned) == len(CALLS)
    for call, items in planned.items():
        got = [(body["delivery"], body["seq"], body["event"]) for body in receiver.of_call(call)]
        assert got == items, call
        assert [seq for _, seq, _ in got] == list(range(1, len(got) + 1))
    queue_call = next(call for call, items in planned.items() if len(items) == 7 and items[3][2] == "answered")
    assert [event for *_, event in planned[queue_call]] == (["ringing"] * 3 + ["answered"] + ["ring_stopped"] * 2
                                                            + ["ended"])
