"""Bitrix24's connector against the portal's REST API (``bitrix24_server.py``) over HTTP, over a real store (SQLite):
what a repeat, a race and a refusal come to at the portal.

* Two calls from one number at once get two ``CALL_ID``\\ s; a ``register`` taken again after its lease ran out (the
  daemon killed before it marked it sent) gets the same ``CALL_ID``, and the portal has one call, not two.
* ``finish`` answered "not found" on a repeat is sent (the first try went through); on a first try it is given up.
* Two nodes refreshing the token at once: one refresh at the portal, the old refresh token never sent twice, both
  nodes on the winner's pair, the rotated refresh token kept.
* ``WRONG_AUTH_TYPE``: given up with words that say what to do, visible in ``crm_status``; the call's later requests
  given up naming the cause.
* The responsible manager (``route_to_responsible``): the client's ``ASSIGNED_BY`` sees the card of a call that rings
  someone else, hidden when that agent answers; a manager who answers keeps theirs; an unknown number shows nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from companion.crm.bitrix24 import Bitrix24Connector
from companion.crm.connector import ConnectorDeps, GiveUp, Sent
from companion.crm.sender import CrmSender
from cti.crm import CrmItem, CrmRequest
from store import open_store
from store.repository import Store
from store.settings import StoreSettings
from tests.crm.bitrix24_server import Bitrix24Portal
from tests.crm.local_server import serving
from tests.crm.planning import plan_all, trace_events
from tests.crm.test_bitrix24 import portal_with_users
from tests.daemon.conftest import wait_until
from ui_bridge.crm_settings import Bitrix24Settings, CrmSettings
from ui_bridge.routes.crm_bitrix24 import OAUTH, token_record

NUMBER = "79160000000"


class NoLinks:
    """No recording links here: these tests attach no records."""

    def url(self, pbx: str, linkedid: str, index: int) -> str:
        raise AssertionError("no recording link is asked for in these tests")


def settings(portal_url: str, **keys: Any) -> Bitrix24Settings:
    return Bitrix24Settings.model_validate({
        "portal": portal_url, "client_id": "local.cti.test", "client_secret": "test-secret",
        "oauth_url": f"{portal_url}/oauth/token/", "users": {"101": 1, "102": 2}, **keys})


async def installed(store: Store, portal: Bitrix24Portal, *, expires_at: float | None = None) -> dict[str, Any]:
    """The application's tokens kept as the install handler keeps them."""
    tokens = portal.issue_tokens()
    record = token_record(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
                          expires_at=expires_at if expires_at is not None else time.time() + 3600,
                          domain=portal.domain, member_id=portal.member_id,
                          application_token=portal.application_token)
    await store.put_crm_value("bitrix24", OAUTH, record)
    return record


class Setup:
    def __init__(self, portal: Bitrix24Portal, server_url: str, stack: AsyncExitStack, tmp_path: Path) -> None:
        self.portal, self.url, self.stack, self.tmp_path = portal, server_url, stack, tmp_path
        self.http = httpx.AsyncClient()

    async def store(self) -> Store:
        """A node's store: each call opens the same SQLite file again (another node's connection)."""
        return await self.stack.enter_async_context(
            open_store(StoreSettings(path=self.tmp_path / "crm.sqlite"), region="RU"))

    def connector(self, store: Store, **keys: Any) -> Bitrix24Connector:
        return Bitrix24Connector(settings(self.url, **keys), ConnectorDeps(
            store=lambda: store, http=self.http, links=NoLinks(), clock=time.time))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    portal = portal_with_users()
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(serving(portal.app))
        portal.base_url = server.url
        made = Setup(portal, server.url, stack, tmp_path)
        stack.push_async_callback(made.http.aclose)
        yield made


def register(linkedid: str, agent: int = 1) -> CrmRequest:
    return CrmRequest("register", {"USER_ID": agent, "PHONE_NUMBER": NUMBER, "TYPE": 2, "SHOW": 0, "CRM_CREATE": 1,
                                   "CALL_START_DATE": "2026-11-30T09:00:00+03:00",
                                   "EXTERNAL_CALL_ID": f"main:{linkedid}"})


async def taken(store: Store, now: float | None = None, limit: int = 10) -> list[CrmItem]:
    return await store.take_crm("bitrix24", now=time.time() if now is None else now, lease_seconds=60, limit=limit)


async def test_two_calls_from_one_number_at_once_get_two_call_ids(setup: Setup) -> None:
    store = await setup.store()
    await installed(store, setup.portal)
    connector = setup.connector(store)
    for linkedid in ("1.1", "1.2"):
        await store.queue_crm("bitrix24", f"main:{linkedid}", {}, [register(linkedid)], at=time.time())
    items = await taken(store)
    assert len(items) == 2
    first, second = await asyncio.gather(*(connector.send(item, {}) for item in items))
    assert isinstance(first, Sent) and isinstance(second, Sent)
    assert first.answer["call_id"] != second.answer["call_id"]
    assert {c.params["EXTERNAL_CALL_ID"] for c in setup.portal.calls.values()} == {"main:1.1", "main:1.2"}


async def test_a_register_taken_again_after_its_lease_gets_the_same_call_id(setup: Setup) -> None:
    store = await setup.store()
    await installed(store, setup.portal)
    connector = setup.connector(store)
    now = time.time()
    await store.queue_crm("bitrix24", "main:2.1", {}, [register("2.1")], at=now)
    (item,) = await taken(store, now)
    first = await connector.send(item, {})  # sent, and then the daemon was killed before it marked it so
    assert await taken(store, now + 1) == []  # leased: nobody takes it meanwhile
    (again,) = await taken(store, now + 61)  # the lease ran out: another node (or this one restarted) takes it
    assert again.id == item.id and again.attempts == 2
    second = await connector.send(again, {})
    assert isinstance(first, Sent) and isinstance(second, Sent)
    assert second.answer == first.answer
    assert len(setup.portal.calls) == 1  # nothing doubled at the portal
    assert setup.portal.methods().count("telephony.externalcall.register") == 2


async def test_finish_not_found_on_a_repeat_is_sent_and_on_a_first_try_given_up(setup: Setup) -> None:
    store = await setup.store()
    await installed(store, setup.portal)
    connector = setup.connector(store)
    now = time.time()
    finish = CrmRequest("finish", {"CALL_ID": {"$remote": "call_id"}, "USER_ID": 1, "DURATION": 20,
                                   "STATUS_CODE": "200", "ADD_TO_CHAT": 0})
    await store.queue_crm("bitrix24", "main:3.1", {}, [register("3.1"), finish], at=now)
    (reg,) = await taken(store, now)
    sent = await connector.send(reg, {})
    assert isinstance(sent, Sent)
    await store.crm_sent(reg.id, sent.answer, at=now)
    (fin,) = await taken(store, now)
    answers = await store.crm_call_answers("bitrix24", "main:3.1")
    assert isinstance(await connector.send(fin, answers), Sent)
    (fin_again,) = await taken(store, now + 61)  # its answer was lost: taken again after the lease
    assert isinstance(await connector.send(fin_again, answers), Sent)
    call = setup.portal.calls[answers["call_id"]]
    assert call.finished is not None and call.finished["DURATION"] == 20
    assert [r.error for r in setup.portal.requests if r.method.endswith(".finish")] == [None,
                                                                                       "ERROR_CALL_NOT_FOUND"]
    # A first try at a call the portal never had is no repeat: given up, with the portal's words.
    await store.queue_crm("bitrix24", "main:3.2", {}, [CrmRequest("finish", {
        "CALL_ID": "externalCall.unknown.1", "USER_ID": 1, "DURATION": 0, "STATUS_CODE": "304"})], at=now)
    (unknown,) = await taken(store, now)
    refused = await connector.send(unknown, {})
    assert isinstance(refused, GiveUp) and "ERROR_CALL_NOT_FOUND" in refused.reason


@pytest.mark.parametrize("how", ["kept-expiry", "portal-says-expired"])
async def test_two_nodes_refreshing_at_once_refresh_once_and_share_the_winners_pair(setup: Setup, how: str) -> None:
    """Node A and node B (each its own store connection and connector) send with a token that has run out: by the
    expiry kept in the store, or by the portal's ``expired_token`` (the kept expiry still says it is good). A's
    refresh is held at the portal while B comes to refresh the same token: B waits for A's pair."""
    store_a, store_b = await setup.store(), await setup.store()
    if how == "kept-expiry":
        old = await installed(store_a, setup.portal, expires_at=time.time() - 10)
    else:
        old = await installed(store_a, setup.portal)
        setup.portal.expire_access_tokens()
    node_a, node_b = setup.connector(store_a), setup.connector(store_b)
    now = time.time()
    for linkedid in ("4.1", "4.2"):
        await store_a.queue_crm("bitrix24", f"main:{linkedid}", {}, [register(linkedid)], at=now)
    item_a, item_b = await taken(store_a, now)
    setup.portal.token_gate = gate = asyncio.Event()
    send_a = asyncio.create_task(node_a.send(item_a, {}))
    await wait_until(lambda: setup.portal.methods(ok_only=False).count("oauth.token") == 1, 10,
                     "A's refresh at the portal")
    send_b = asyncio.create_task(node_b.send(item_b, {}))
    await wait_until(lambda: node_b.tokens.waited == 1, 10, "B waiting for A's refresh")
    assert setup.portal.methods(ok_only=False).count("oauth.token") == 1
    gate.set()
    sent_a, sent_b = await asyncio.wait_for(asyncio.gather(send_a, send_b), 10)
    assert isinstance(sent_a, Sent) and isinstance(sent_b, Sent)

    refreshes = [r for r in setup.portal.requests if r.method == "oauth.token"]
    assert [r.params["refresh_token"] for r in refreshes] == [old["refresh_token"]]  # once, never a second use
    assert setup.portal.refreshes == 1 and node_a.tokens.waited == 0
    kept = await store_b.crm_value("bitrix24", OAUTH)
    assert kept is not None and "refreshing" not in kept
    assert kept["refresh_token"] in setup.portal.refresh_tokens  # the rotated one, good for the next refresh
    registers = [r for r in setup.portal.requests if r.method.endswith(".register") and r.status == 200]
    assert len(registers) == 2 and {r.auth for r in registers} == {"oauth"}
    assert await node_a.tokens.access_token() == await node_b.tokens.access_token() == kept["access_token"]


async def test_wrong_auth_type_is_given_up_in_words_visible_in_the_status(setup: Setup) -> None:
    store = await setup.store()
    await installed(store, setup.portal)
    connector = setup.connector(store)
    crm = CrmSettings.model_validate({"retry_first_seconds": 0.05, "retry_max_seconds": 0.2})
    sender = CrmSender(connector, crm, lambda: store, poll_seconds=0.01)
    setup.portal.fail_next(1, 401, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method")
    await store.queue_crm("bitrix24", "main:5.1", {}, [register("5.1"), CrmRequest("finish", {
        "CALL_ID": {"$remote": "call_id"}, "USER_ID": 1, "DURATION": 0, "STATUS_CODE": "304"})], at=time.time())
    task = asyncio.create_task(sender.run())
    try:
        await wait_until(lambda: sender.failed == 2, 10, "the register and the finish given up")
    finally:
        sender.stop()
        await asyncio.wait_for(task, 5)
    reg, fin = await store.list_crm_items(crm="bitrix24", call="main:5.1")
    assert reg.state == "failed" and reg.attempts == 1  # never retried: a retry cannot change it
    assert reg.last_error is not None and "WRONG_AUTH_TYPE" in reg.last_error
    assert "needs the local application, not the webhook" in reg.last_error
    assert fin.state == "failed" and fin.last_error is not None and "register was given up" in fin.last_error
    (status,) = await store.crm_status()
    assert status.crm == "bitrix24" and status.failed == 2 and status.pending == 0
    assert status.last_error is not None and "register was given up" in status.last_error
    assert len(setup.portal.calls) == 0


async def send_call(store: Store, connector: Bitrix24Connector, requests: list[CrmRequest], call: str) -> None:
    """A call's requests queued and sent in order, each marked as the sender marks it."""
    await store.queue_crm("bitrix24", call, {}, requests, at=time.time())
    while True:
        items = await taken(store)
        if not items:
            return
        for item in items:
            result = await connector.send(item, await store.crm_call_answers("bitrix24", call))
            assert isinstance(result, Sent), (item.kind, result)
            await store.crm_sent(item.id, result.answer, at=time.time())


def shown_to(portal: Bitrix24Portal, call_id: str, method: str) -> list[list[int]]:
    return [r.params["USER_ID"] for r in portal.requests
            if r.method == f"telephony.externalcall.{method}" and r.params.get("CALL_ID") == call_id]


async def test_the_clients_responsible_manager_sees_the_card(setup: Setup) -> None:
    """A queue call (101, 102, 105 rung; 102 answers) from a client 103 is responsible for: 103's phone never rings,
    yet their card pops while it rings and goes when 102 answers. Bitrix24 is asked once, after the first card."""
    store = await setup.store()
    await installed(store, setup.portal)
    setup.portal.add_contact("79161234500", 7, assigned_by=3)
    connector = setup.connector(store, route_to_responsible=True)
    (requests,) = plan_all(connector.planner, trace_events("07-queue-ringall-answered")).values()
    requests = [r for r in requests if r.kind != "attachRecord"]
    assert [r.kind for r in requests] == ["register", "show", "showResponsible", "show", "show", "hide",
                                          "hideResponsible", "finish"]
    await send_call(store, connector, requests, "main:1795479360.12")
    (call,) = setup.portal.calls.values()
    assert shown_to(setup.portal, call.call_id, "show") == [[1], [3], [2], [5]]
    assert shown_to(setup.portal, call.call_id, "hide") == [[1, 5], [3]]
    assert call.shown == set() and call.finished is not None and call.finished["USER_ID"] == 2
    searched = [r.params for r in setup.portal.requests if r.method.endswith(".searchcrmentities")]
    assert searched == [{"PHONE_NUMBER": "79161234500"}]

    # The responsible answers: their card stays. An unknown number: nobody is asked to see it.
    setup.portal.requests.clear()
    (again,) = plan_all(connector.planner, trace_events("07-queue-ringall-answered")).values()
    setup.portal.add_contact("79161234500", 7, assigned_by=2)
    await send_call(store, connector, [r for r in again if r.kind != "attachRecord"], "main:1795479360.12-again")
    (call_id,) = {r.params["CALL_ID"] for r in setup.portal.requests if r.method.endswith(".finish")}
    assert shown_to(setup.portal, call_id, "hide") == [[1, 5]]
    del setup.portal.contacts["79161234500"]
    setup.portal.requests.clear()
    (third,) = plan_all(connector.planner, trace_events("07-queue-ringall-answered")).values()
    await send_call(store, connector, [r for r in third if r.kind != "attachRecord"], "main:third")
    (call_id,) = {r.params["CALL_ID"] for r in setup.portal.requests if r.method.endswith(".finish")}
    assert shown_to(setup.portal, call_id, "show") == [[1], [2], [5]]
    assert shown_to(setup.portal, call_id, "hide") == [[1, 5]]
