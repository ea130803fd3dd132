"""Caller cards in the pop: the directory, repeat callers, withheld numbers, a slow CRM, search and attach."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from cti.directory import Contact, Vehicle
from cti.effects import CallRang
from tests.conftest import UNIT
from tests.daemon.conftest import POLL_SECONDS, leg_event
from tests.panel_env import panel_env
from tests.ui_bridge.wsclient import WsClient

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 (Зайцева Марина) → 74950000101 → agent 101
RINGING_101 = leg_event("Newstate", "PJSIP/101-", "Ringing")
ZAITSEVA = Contact(name="Зайцева Марина Игоревна", phones=("8 (916) 000-13-13",), email="zaitseva@example.ru",
                   vehicles=(Vehicle(make="киа", model="Rio", year=2017, plate="м 456 ок 199"),))


async def test_a_known_caller_pops_with_name_and_car_and_calls_again_as_repeat() -> None:
    async with panel_env([TRANSFER], speed=0, loop=True) as env:
        await env.store.add_contact(ZAITSEVA)
        anna = await WsClient.connect(env, "anna")
        # The PBX held while 101 rings (as a phone rings: the lookup has its time), on each pass of the loop.
        await env.serve_through(RINGING_101, "101 ringing")
        first = await anna.wait_for("call.ringing", timeout=20, extension="101")
        card = first["card"]
        assert card["name"] == "Зайцева Марина Игоревна" and card["status"] == "new"
        [contact] = card["contacts"]
        assert contact["vehicles"] == [{"make": "Kia", "model": "Rio", "year": 2017, "plate": "М 456 ОК 199",
                                        "vin": None}]
        assert card["last_calls"] == []
        # The replay loops: the same customer calls again, now with a call in the journal.
        env.replay.advance(len(env.events) - env.replay.position)  # the rest of the first pass
        await anna.wait_for("call.ended", timeout=20, linkedid=first["linkedid"])
        await env.running.daemon.store.flush()  # type: ignore[union-attr]
        await env.serve_through(RINGING_101, "101 ringing again")
        async with asyncio.timeout(40 * UNIT):
            while True:
                pops = [m for m in anna.of_type("call.ringing") if m["linkedid"] != first["linkedid"]]
                if pops:
                    break
                await asyncio.sleep(POLL_SECONDS)
        again = pops[0]["card"]
        assert again["status"] == "repeat"
        assert [c["linkedid"] for c in again["last_calls"]] == [first["linkedid"]]
        assert again["last_calls"][0]["answered_by"] == "101"


async def test_a_withheld_number_pops_without_a_lookup() -> None:
    async with panel_env(["23-cyrillic-anonymous"], speed=0) as env:
        await env.store.add_contact(Contact(name="Никто", phones=("anonymous",)))
        admin = await WsClient.connect(env, "admin")
        env.start_calls()
        pops = []
        async with asyncio.timeout(30 * UNIT):
            while not (pops := [m for m in admin.of_type("call.ringing") if m["card"]["withheld"]]):
                await asyncio.sleep(POLL_SECONDS)
        assert pops[0]["card"] == {"number": None, "number_display": None, "withheld": True, "name": None,
                                   "status": "unknown", "contacts": [], "last_calls": [], "open_missed": 0,
                                   "sources": []}


@asynccontextmanager
async def crm_server(delay: float, answer: dict[str, object]) -> AsyncIterator[tuple[str, list[str]]]:
    """A CRM's HTTP lookup service on loopback that answers after ``delay`` seconds."""
    asked: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        asked.append(request.split(b" ")[1].decode())
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:  # the test is over before the slow answer
            writer.close()
            return
        body = json.dumps(answer, ensure_ascii=False).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/hs/cti/caller?number={{number}}", asked


def directory_config(url: str, timeout: float) -> str:
    """Lines for config.example.toml's [directory] section (they replace its crm_url / crm_timeout)."""
    return f'crm_url = "{url}"\ncrm_timeout = {timeout}'


async def test_a_slow_crm_never_delays_the_pop_beyond_its_timeout() -> None:
    answer = {"contacts": [{"name": "Зайцева М. И. (1С)", "vehicles": [{"make": "Kia", "plate": "М456ОК199"}]}]}
    async with (crm_server(delay=5.0, answer=answer) as (url, asked),
            panel_env([TRANSFER], speed=0, directory_extra=directory_config(url, 0.3)) as env):
        await env.store.add_contact(ZAITSEVA)
        rang: dict[str, float] = {}
        env.running.daemon.subscribe(
            lambda e: rang.setdefault(e.linkedid, time.monotonic()) if isinstance(e, CallRang) else None)
        admin = await WsClient.connect(env, "admin")
        await env.serve_through(RINGING_101, "101 ringing")
        pop = await admin.wait_for("call.ringing", timeout=20, extension="101")
        arrived = next(t for t, m in admin.received if m is pop)
        assert arrived - rang[pop["linkedid"]] < 0.3 + 0.5 * UNIT, "the pop waited for the CRM past its timeout (5 s)"
        assert pop["card"]["name"] == "Зайцева Марина Игоревна" and pop["card"]["sources"] == ["local"]
        assert asked == ["/hs/cti/caller?number=79160001313"]
        # Nothing about the call overtook its pop.
        await env.serve_through(leg_event("BridgeEnter", "PJSIP/101-"), "101 answering")
        await admin.wait_for("call.answered", linkedid=pop["linkedid"])
        order = [m["type"] for _, m in admin.received if m.get("linkedid") == pop["linkedid"]]
        assert order.index("call.ringing") < order.index("call.answered")


async def test_a_crm_that_answers_in_time_adds_its_contact_and_is_cached() -> None:
    answer = {"contacts": [{"name": "Зайцева М. И. (1С)", "kind": "private",
                            "vehicles": [{"make": "Kia", "model": "Rio", "plate": "М456ОК199"}]}]}
    async with (crm_server(delay=0.0, answer=answer) as (url, asked),
            panel_env([TRANSFER], speed=0, directory_extra=directory_config(url, 2.0)) as env):
        admin = await WsClient.connect(env, "admin")
        await env.serve_through(RINGING_101, "101 ringing")
        pop = await admin.wait_for("call.ringing", timeout=20, extension="101")
        card = pop["card"]
        assert card["sources"] == ["local", "crm"] and card["name"] == "Зайцева М. И. (1С)"
        assert card["contacts"][0]["source"] == "crm" and card["contacts"][0]["id"] is None
        assert card["contacts"][0]["vehicles"][0]["plate"] == "М 456 ОК 199"
        await env.serve_through(leg_event("Newstate", "PJSIP/104-", "Ringing"), "104 ringing")  # the transfer target
        second = await admin.wait_for("call.ringing", timeout=20, extension="104")
        assert second["card"]["sources"] == ["local", "crm"]
        assert len(asked) == 1  # one lookup per call


async def test_search_create_and_attach_from_the_panel_api() -> None:
    async with panel_env([TRANSFER], speed=0) as env:
        await env.store.add_contact(ZAITSEVA)
        anna_ws = await WsClient.connect(env, "anna")
        await env.serve_through(leg_event("BridgeEnter", "PJSIP/101-"), "101 answering")  # and held there
        answered = await anna_ws.wait_for("call.answered", timeout=20, answered_by="101")
        async with httpx.AsyncClient(base_url=env.url) as anna:
            await anna.post("/api/login", json={"name": "anna", "password": "anna-password-1"})
            found = (await anna.get("/api/contacts", params={"q": "M456OK"})).json()["contacts"]  # Latin letters
            assert [c["name"] for c in found] == ["Зайцева Марина Игоревна"]
            assert (await anna.get("/api/contacts", params={"q": "зайц"})).json()["contacts"][0]["id"] == found[0]["id"]
            created = await anna.post("/api/contacts", json={"name": "Яковлев Игорь", "phones": ["79160001313"]})
            assert created.status_code == 201
            new_id = created.json()["contact"]["id"]
            attached = await anna.post(f"/api/calls/{answered['linkedid']}/contact", json={"contact_id": new_id})
            assert attached.status_code == 200
            assert attached.json()["card"]["contacts"][0]["name"] == "Яковлев Игорь"
            update = await anna_ws.wait_for("call.card", linkedid=answered["linkedid"])
            assert update["card"]["contacts"][0]["id"] == new_id
            bad = await anna.post("/api/contacts", json={"phones": ["1"]})
            assert bad.status_code == 400 and "name" in bad.json()["error"]["message"]
        async with httpx.AsyncClient(base_url=env.url) as oleg:
            await oleg.post("/api/login", json={"name": "oleg", "password": "oleg-password-1"})
            refused = await oleg.post(f"/api/calls/{answered['linkedid']}/contact", json={"contact_id": new_id})
            assert refused.status_code == 403
        async with httpx.AsyncClient(base_url=env.url) as qa:
            await qa.post("/api/login", json={"name": "qa", "password": "qa-password-1"})
            assert (await qa.post("/api/contacts", json={"name": "x"})).status_code == 403
