"""Complaint messages addressed to people reach them on whichever panel node their browser is connected to, and no
one else there: two nodes on one PostgreSQL (``tests/ui_bridge/across_nodes.py``: node A a daemon following the
replay PBX, node B a daemon standing by), real HTTP and WebSockets, the complaints' desk on each node.

Who is told what (``ui_bridge/complaints.py``): a registration goes to the complaint's responsible and assignee and
to the managers (here the admins), its stage's task to its assignee only, an escalation to the managers only; an
unrelated agent and QA get none of them, on either node. A node of the previous release (it knows no envelope
addressed to people, and reads the fields it does not know as absent) must not show such a message to every admin
and QA socket connected to it: it refuses the envelope (skips it and logs it) instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from tests.conftest import UNIT
from tests.panel_env import PanelEnv
from tests.ui_bridge.across_nodes import Nodes, two_nodes
from tests.ui_bridge.complaints_env import Clock
from tests.ui_bridge.wsclient import WsClient, session_cookie
from ui_bridge.complaints import ComplaintDesk
from ui_bridge.envelope import CHANNEL

TRACE = "13-blind-transfer-redirect"  # never played: the complaints here come from the panel, not from a call
#: The responsible of the complaints (agent 101 of spb, in ``two_pbxs.USERS``); the managers are the admins (``boss``
#: of every PBX and ``boss-msk``); ``anna-msk`` (an agent) and ``qa-spb`` (QA) have nothing to do with them.
RESPONSIBLE = "anna-spb"


@asynccontextmanager
async def nodes_with_complaints() -> AsyncIterator[tuple[Nodes, PanelEnv]]:
    """Node A (follows the PBX) and node B (stands by), both with ``[complaints]``; yields them and node B's env."""
    async with two_nodes([TRACE], sections={"complaints": f'default_responsible = "{RESPONSIBLE}"'}) as nodes:
        yield nodes, await nodes.start_b_daemon()


def desk_of(env: PanelEnv) -> ComplaintDesk:
    panel = env.running.daemon.panel
    assert panel is not None
    return panel.complaints


async def connect(env: PanelEnv, name: str) -> WsClient:
    client = await WsClient.connect(env, name)
    await client.wait_for("state")
    return client


async def settled(client: WsClient) -> None:
    """Everything this client's node queued for it before now has reached it: a ping's reply comes after it."""
    reply = await client.request({"type": "ping"})
    assert reply["type"] == "reply", reply


def about_complaints(client: WsClient) -> list[dict[str, Any]]:
    return [msg for _, msg in client.received if msg["type"].startswith("complaint.")]


async def api_post(env: PanelEnv, who: str, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """A request to ``env``'s node's JSON API as ``who`` (from the panel's own page): the complaint it answers."""
    async with httpx.AsyncClient(base_url=env.url, timeout=10 * UNIT, headers={"Origin": env.url}) as http:
        http.cookies.set("cti_session", await session_cookie(env, who))
        response = await http.post(path, json=body)
    assert response.status_code == status, response.text
    complaint: dict[str, Any] = response.json()["complaint"]
    return complaint


async def register_on(env: PanelEnv, who: str, body: dict[str, Any]) -> dict[str, Any]:
    return await api_post(env, who, "/api/complaints", body, status=201)


class BusTap:
    """Every payload published on the panel's bus channel, as another process subscribed to it receives it."""

    def __init__(self) -> None:
        self.payloads: list[str] = []

    def __call__(self, payload: str) -> None:
        self.payloads.append(payload)

    def headers_with(self, text: str) -> list[str]:
        """The header lines of the envelopes whose frame contains ``text``."""
        found = []
        for payload in self.payloads:
            lines = payload.split("\n")
            found += [lines[i] for i in range(0, len(lines) - 1, 2) if text in lines[i + 1]]
        return found


class PreviousReleaseHeader(BaseModel):
    """An envelope's header as a node of the release before messages addressed to people reads it (envelope format
    1, ``ui_bridge/envelope.py`` then): the fields it did not know ignored, so an envelope it does read goes to the
    ``all`` subscribers of ``pbx`` (no PBX: every admin and QA socket) and to ``ext``'s agents."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int
    node: str
    kind: Literal["msg", "state", "state.request"]
    seq: int | None = None
    pbx: str | None = None
    ext: list[str] = []
    everyone: bool = False


def read_by_previous_release(header: str) -> PreviousReleaseHeader | None:
    """The header as the previous release's ``envelopes()`` reads it; None: skipped (logged there as unreadable)."""
    try:
        parsed = PreviousReleaseHeader.model_validate_json(header)
    except ValidationError:
        return None
    return parsed if parsed.v == 1 else None


async def test_a_complaint_registered_on_node_a_reaches_its_responsible_and_the_managers_on_node_b_and_no_one_else(
) -> None:
    async with nodes_with_complaints() as (nodes, b):
        tap = BusTap()
        subscription = await nodes.a.store.subscribe(CHANNEL, tap)
        try:
            anna_spb_b, boss_b, anna_msk_b, qa_b = [await connect(b, n)
                                                    for n in (RESPONSIBLE, "boss", "anna-msk", "qa-spb")]
            boss_msk_a, anna_msk_a, qa_a = [await connect(nodes.a, n) for n in ("boss-msk", "anna-msk", "qa-spb")]

            c = await register_on(nodes.a, "boss", {"type": "quality", "client_name": "Сидоров Иван",
                                                    "client_phone": "79160000042",
                                                    "comment": "стук после ремонта"})
            assert (c["responsible"], c["assignee"], c["stage"]) == (RESPONSIBLE, RESPONSIBLE, "registration")

            # The responsible, on node B: the registration and the stage's task with its deadline.
            registered = await anna_spb_b.wait_for("complaint.registered")
            assert registered["complaint"]["id"] == c["id"] and registered["by"] == "boss"
            task = await anna_spb_b.wait_for("complaint.task")
            assert task["complaint"]["id"] == c["id"]
            assert task["task"]["assignee"] == RESPONSIBLE and task["task"]["due_at"]
            # The managers, on both nodes: the registration (the task is the assignee's alone).
            assert (await boss_b.wait_for("complaint.registered"))["complaint"]["id"] == c["id"]
            assert (await boss_msk_a.wait_for("complaint.registered"))["complaint"]["id"] == c["id"]
            # Each node has offered the frames to all its sockets by now (a receiver there got them): nobody else
            # on either node got anything about the complaint.
            for client in (anna_spb_b, boss_b, anna_msk_b, qa_b, boss_msk_a, anna_msk_a, qa_a):
                await settled(client)
            assert [m["type"] for m in about_complaints(anna_spb_b)] == ["complaint.registered", "complaint.task"]
            assert [m["type"] for m in about_complaints(boss_b)] == ["complaint.registered"]
            assert [m["type"] for m in about_complaints(boss_msk_a)] == ["complaint.registered"]
            for outsider in (anna_msk_b, qa_b, anna_msk_a, qa_a):
                assert about_complaints(outsider) == []

            # What went over the bus: the two messages, each in an envelope naming its people, which a node of the
            # previous release refuses rather than offering it to every admin and QA socket of its own.
            headers = tap.headers_with(c["number"])
            assert len(headers) == 2, headers
            for header in headers:
                assert read_by_previous_release(header) is None, header
        finally:
            await subscription.close()


async def test_an_escalation_on_node_b_reaches_the_managers_on_node_a_and_the_reassignment_the_people_concerned(
) -> None:
    async with nodes_with_complaints() as (nodes, b):
        boss_msk_a, anna_spb_a, anna_msk_a, qa_a = [await connect(nodes.a, n)
                                                    for n in ("boss-msk", RESPONSIBLE, "anna-msk", "qa-spb")]
        boss_b, qa_b = [await connect(b, n) for n in ("boss", "qa-spb")]
        c = await register_on(b, "boss", {"type": "delivery", "client_name": "Иванов", "client_phone": "79160000001",
                                          "comment": "машину не выдали в срок"})
        await anna_spb_a.wait_for("complaint.task")
        await boss_msk_a.wait_for("complaint.registered")

        # Node B's clock a day and an hour on (the registration stage has 24 hours): node B escalates the task;
        # node A, on the real clock, finds nothing due.
        desk_b = desk_of(b)
        clock = Clock(desk_b.clock())
        desk_b.clock = clock
        clock.now += 25 * 3600
        assert await desk_of(nodes.a).tick() == 0
        await desk_b.tick()  # or its own ticker, meanwhile: the store escalates a task once, whichever asks first
        overdue = await boss_msk_a.wait_for("complaint.overdue")
        assert overdue["complaint"]["id"] == c["id"] and overdue["task"]["assignee"] == RESPONSIBLE
        assert overdue["task"]["escalated_at"] is not None
        assert (await boss_b.wait_for("complaint.overdue"))["complaint"]["id"] == c["id"]

        for client in (boss_msk_a, anna_spb_a, anna_msk_a, qa_a, boss_b, qa_b):
            await settled(client)
        assert [m["type"] for m in about_complaints(boss_msk_a)] == ["complaint.registered", "complaint.overdue"]
        assert [m["type"] for m in about_complaints(boss_b)] == ["complaint.registered", "complaint.overdue"]
        # The assignee is told by the overdue list and the manager, not by this message; QA and another agent never.
        assert [m["type"] for m in about_complaints(anna_spb_a)] == ["complaint.registered", "complaint.task"]
        for outsider in (anna_msk_a, qa_a, qa_b):
            assert about_complaints(outsider) == []

        # The manager, on node B, hands the complaint to agent 101 of msk (on node A): she gets it with its task,
        # the one responsible before is told it left her, QA still nothing.
        c = await api_post(b, "boss", f"/api/complaints/{c['id']}/reassign",
                           {"revision": overdue["complaint"]["revision"], "to": "anna-msk", "reason": "больничный"})
        assert (c["responsible"], c["assignee"]) == ("anna-msk", "anna-msk")
        task = await anna_msk_a.wait_for("complaint.task")
        assert task["task"]["assignee"] == "anna-msk" and task["complaint"]["id"] == c["id"]
        changed = await anna_spb_a.wait_for("complaint.changed")
        assert changed["complaint"]["responsible"] == "anna-msk" and "reassigned" in changed["actions"]
        await boss_msk_a.wait_for("complaint.changed")
        await boss_b.wait_for("complaint.changed")
        for client in (boss_msk_a, anna_spb_a, anna_msk_a, qa_a, boss_b, qa_b):
            await settled(client)
        assert [m["type"] for m in about_complaints(anna_msk_a)] == ["complaint.changed", "complaint.task"]
        assert [m["type"] for m in about_complaints(anna_spb_a)][2:] == ["complaint.changed"]
        for outsider in (qa_a, qa_b):
            assert about_complaints(outsider) == []
