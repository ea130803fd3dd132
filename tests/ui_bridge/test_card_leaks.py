"""Card lookups that outlive their call, and card lookups piling up behind a store or CRM that is behind.

Issue 10 measured two leaks: a lookup finishing after its call's ``CallEnded`` left a ``known_cards`` entry
nobody removed, and lookups had no bound (thousands pending, hundreds of MiB). Here the lookups are held by
a real CRM on loopback that answers only when the test says so (``crm_timeout`` is far beyond the test),
so every lookup is slow for as long as the test needs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.config import DirectorySettings, PbxSettings
from companion.pbx_link import model_config
from cti.context import CallView
from cti.effects import CallAnswered, CallEnded, CallRang, Effect
from cti.model import CallBook
from cti.records import CallRecord
from store import StoreSettings, open_store
from store.repository import User
from tests.daemon.conftest import UNIT
from tests.panel_env import panel_env
from tests.ui_bridge.handles import calls_only
from tests.ui_bridge.wsclient import WsClient
from ui_bridge.cards import MAX_CARD_LOOKUPS, CardService, PopSequencer
from ui_bridge.hub import Client, Hub, Transport
from ui_bridge.notifier import Notifier

ANSWERED = "01-direct-answered"
CRM_ANSWER = {"contacts": [{"name": "Из CRM"}]}


@dataclass
class HeldCrm:
    """A CRM lookup service on loopback whose answers wait for :meth:`release`."""

    url: str = ""
    asked: list[str] = field(default_factory=list)
    answered: int = 0
    #: Requests the daemon closed before the answer.
    dropped: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


@asynccontextmanager
async def held_crm() -> AsyncIterator[HeldCrm]:
    crm = HeldCrm()
    body = json.dumps(CRM_ANSWER, ensure_ascii=False).encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            crm.asked.append(request.split(b" ")[1].decode())
            eof = asyncio.ensure_future(reader.read(1))  # b"": the daemon closed the request
            released = asyncio.ensure_future(crm.released.wait())
            try:
                await asyncio.wait({eof, released}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                eof.cancel()
                released.cancel()
            if not released.done() or released.cancelled():
                crm.dropped += 1
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
            crm.answered += 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the daemon gave up on the lookup (its call ended), or the test is over
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    crm.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/caller?number={{number}}"
    async with server:
        yield crm
        crm.release()


async def until(predicate: Any, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout * UNIT):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_lookups_that_finish_after_their_call_ended_leave_no_card_behind() -> None:
    """Many short calls, each ending while its card is still looked up: once the CRM answers, no card of an
    ended call is kept, nothing is pending, and every pop reached the admin before its call's end."""
    calls = 12
    async with (held_crm() as crm,
                panel_env([ANSWERED], speed=0, loop=True,
                          directory_extra=f'crm_url = "{crm.url}"\ncrm_timeout = 10') as env):
        daemon = env.running.daemon
        assert daemon.panel is not None
        known = daemon.panel.notifier.known_cards
        sequencer = daemon.sequencer
        assert sequencer is not None
        ended: list[str] = []
        most_pending = 0

        def watch(effect: Effect) -> None:
            nonlocal most_pending
            if isinstance(effect, CallEnded):
                ended.append(effect.record.linkedid)
            most_pending = max(most_pending, sequencer.lookups_in_flight)

        daemon.subscribe(watch)
        admin = await WsClient.connect(env, "admin")
        await admin.wait_for("state")
        env.start_calls()
        await until(lambda: len(ended) >= calls, 60, f"{calls} calls to end")
        env.replay.pause()
        crm.release()
        await until(lambda: {m["linkedid"] for m in admin.of_type("call.ended")} >= set(ended), 20,
                    "every call.ended to reach the admin")
        await asyncio.sleep(0)  # a lookup answered with the last call.ended has written its card by now
        assert not set(known) & set(ended), f"{len(set(known) & set(ended))} cards of ended calls were kept"
        assert not set(sequencer.pending_calls) & set(ended), "ended calls still wait for their card"
        assert most_pending <= 2, f"{most_pending} lookups were pending at once for calls one after another"
        for linkedid in ended:
            order = [m["type"] for _, m in admin.received if m.get("linkedid") == linkedid]
            assert "call.ringing" in order and order.index("call.ringing") < order.index("call.ended"), order


# -- the bound, on the panel's own objects -------------------------------------------------------------


@dataclass
class Edge:
    """Notifier → PopSequencer → Hub as the daemon wires them, with one admin client's queue to read."""

    sequencer: PopSequencer
    notifier: Notifier
    admin: Client
    cards: CardService
    received: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> list[dict[str, Any]]:
        while not self.admin.queue.empty():
            self.received.append(json.loads(self.admin.queue.get_nowait()))
        return self.received

    def of(self, linkedid: str) -> list[dict[str, Any]]:
        return [m for m in self.drain() if m.get("linkedid") == linkedid]


@asynccontextmanager
async def edge(tmp_path: Path, crm_url: str) -> AsyncIterator[Edge]:
    async with open_store(StoreSettings(path=tmp_path / "cti.sqlite"), region="RU") as store:
        pbx = PbxSettings()
        notifier = Notifier({pbx.id: calls_only(pbx, CallView(CallBook(model_config(pbx))))}, None, pbx.default_region)
        hub = Hub(queue_size=10_000)
        admin = hub.new_client(User(name="admin", role="admin"), Transport())  # its frames are read off its queue
        hub.add(admin, "all")
        cards = CardService(DirectorySettings(crm_url=crm_url, crm_timeout=10), lambda: store, pbx.default_region)
        try:
            yield Edge(PopSequencer(notifier, hub, cards), notifier, admin, cards)
        finally:
            await cards.close()


def rang(n: int) -> CallRang:
    return CallRang(linkedid=f"1795479360.{n}", agent="101", channel=f"PJSIP/101-{n:08x}", uniqueid=f"1795479361.{n}",
                    caller=f"7916000{n:04d}", caller_name=None, called="74950000101", queue=None, at=1795479360.0 + n)


def ended(n: int) -> CallEnded:
    record = CallRecord(linkedid=f"1795479360.{n}", direction="inbound", caller=f"7916000{n:04d}", caller_name=None,
                        called="74950000101", answered=True, answered_by="101", missed_reason=None, talk_seconds=5.0,
                        transferred_to=None, agents_rung_not_answered=(), recording=None,
                        started_at=1795479360.0 + n, answered_at=1795479362.0 + n, ended_at=1795479367.0 + n,
                        outcome="answered", agents_answered=("101",))
    return CallEnded(record, None, ())


async def test_held_lookups_are_bounded_and_every_pop_still_reaches_the_agent_in_order(tmp_path: Path) -> None:
    """More calls ring at once than lookups may wait: the calls beyond the bound pop at once with the card
    the PBX's number gives; the others pop with their card once the CRM answers; no call's answer overtakes
    its pop; and when every call has ended nothing is left (lookups, tasks, known cards)."""
    extra = 5
    total = MAX_CARD_LOOKUPS + extra
    async with held_crm() as crm, edge(tmp_path, crm.url) as e:
        for n in range(total):
            e.sequencer.on_effect(rang(n))
            assert e.sequencer.lookups_in_flight <= MAX_CARD_LOOKUPS
            e.sequencer.on_effect(CallAnswered(linkedid=f"1795479360.{n}", answered_by="101", at=1795479362.0 + n))
        assert e.sequencer.lookups_in_flight == MAX_CARD_LOOKUPS
        # The calls over the bound did not wait: their pop (number only), then their answer.
        for n in range(MAX_CARD_LOOKUPS, total):
            pop, answered = e.of(f"1795479360.{n}")
            assert (pop["type"], answered["type"]) == ("call.ringing", "call.answered")
            assert pop["card"]["number"] == f"7916000{n:04d}" and pop["card"]["sources"] == []
        assert all(not e.of(f"1795479360.{n}") for n in range(MAX_CARD_LOOKUPS)), "a held call's message went out"
        await until(lambda: len(crm.asked) == MAX_CARD_LOOKUPS, 10, "the held lookups to reach the CRM")
        crm.release()
        await until(lambda: e.sequencer.lookups_in_flight == 0, 20, "the held lookups to complete")
        for n in range(MAX_CARD_LOOKUPS):
            pop, answered = e.of(f"1795479360.{n}")
            assert (pop["type"], answered["type"]) == ("call.ringing", "call.answered")
            assert pop["card"]["sources"] == ["local", "crm"] and pop["card"]["name"] == "Из CRM"
        for n in range(total):
            e.sequencer.on_effect(ended(n))
        assert e.notifier.known_cards == {} and e.sequencer.pending_calls == []
        await until(lambda: e.sequencer.tasks == 0, 5, "the lookup tasks to finish")


async def test_a_call_that_ends_while_its_card_is_looked_up_pops_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    """The store or CRM is behind and the caller hangs up: the agent gets the pop (number only) and the end
    at once, the lookup is dropped, and a card answered later is not kept."""
    async with held_crm() as crm, edge(tmp_path, crm.url) as e:
        e.sequencer.on_effect(rang(1))
        await until(lambda: len(crm.asked) == 1, 10, "the lookup to reach the CRM")
        e.sequencer.on_effect(ended(1))
        assert [m["type"] for m in e.of("1795479360.1")] == ["call.ringing", "call.ended"]
        assert e.of("1795479360.1")[0]["card"]["sources"] == []
        await until(lambda: crm.dropped == 1, 5, "the lookup to be dropped (its CRM request closed)")
        crm.release()
        await until(lambda: e.sequencer.tasks == 0, 5, "the lookup task to finish")
        assert e.sequencer.lookups_in_flight == 0 and e.notifier.known_cards == {} and crm.answered == 0
