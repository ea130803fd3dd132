"""amoCRM signed in with OAuth (``docs/crm.md`` "amoCRM / Kommo"): real traces into a real daemon, amoCRM's calls API
and OAuth endpoint over HTTP (``tests/crm/amocrm_server.py``), ``cti crm amocrm-code`` as an admin runs it.

* The code an admin copies from the integration, exchanged by ``cti crm amocrm-code``: the calls that waited for it
  are pushed with the OAuth access token, no restart; the same code again is refused in words.
* The access token running out mid-way (amoCRM answers 401, or the kept expiry says so): refreshed once, every call
  pushed once.
* Two connectors (two nodes) over one store refreshing at once: one refresh at amoCRM, the old refresh token sent
  once, both on the winner's pair.
* The refresh refused (the refresh token expired or revoked): the calls wait, with an error saying to run
  ``cti crm amocrm-code`` (in ``cti crm status``); a new code puts it right, nothing lost.
* A configuration with a long-lived token and OAuth both is refused at load.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from asterisk.replay import ReplayPbx
from asterisk.settings import ConfigError
from companion.config import load_config
from companion.crm.amocrm import AmoCrmConnector
from companion.crm.amocrm_auth import OAUTH
from companion.crm.connector import ConnectorDeps, Sent
from cti.crm import CrmItem
from store import open_store
from store.repository import Store
from store.settings import StoreSettings
from tests.cli_runner import cti, cti_async
from tests.crm.amocrm_server import REDIRECT_URI, AmoCrmAccount
from tests.crm.local_server import LocalServer, serving
from tests.crm.planning import plan_all, trace_events
from tests.crm.test_amocrm import ADDED, CONTACTS, FIVE, QUEUE, idle
from tests.daemon.conftest import RunningDaemon, wait_until, write_config
from tests.traces import TRACES
from ui_bridge.crm_settings import AmoCrmSettings
from ui_bridge.signed_links import NoRecordingLink

QUICK = "retry_first_seconds = 0.05\nretry_max_seconds = 0.2\n"


def oauth_keys(server: LocalServer, account: AmoCrmAccount) -> str:
    return (f'base_url = "{server.url}"\nclient_id = "{account.client_id}"\n'
            f'client_secret = "{account.client_secret}"\nredirect_uri = "{account.redirect_uri}"\n'
            'source = "Asterisk"\nusers = { "101" = 5001, "102" = "5002" }\n')


def config(tmp_path: Path, port: int, server: LocalServer, account: AmoCrmAccount) -> Path:
    return write_config(tmp_path, port, sections={"crm": QUICK, "crm.amocrm": oauth_keys(server, account)})


def account_of_five() -> AmoCrmAccount:
    return AmoCrmAccount(contacts=CONTACTS, users=(5001, 5002))


async def kept_pair(path: Path) -> dict[str, Any]:
    settings = load_config(path)
    async with open_store(settings.store, region=settings.pbx.default_region) as store:
        kept = await store.crm_value("amocrm", OAUTH)
    assert kept is not None
    return kept


async def sign_in(path: Path, account: AmoCrmAccount) -> dict[str, Any]:
    """``cti crm amocrm-code`` with a fresh code, as the admin runs it; the pair it kept."""
    ran = await cti_async("crm", "amocrm-code", account.issue_code(), "--config", str(path))
    assert "amoCRM signed in" in ran.stdout
    return await kept_pair(path)


async def test_the_code_from_the_cli_signs_in_and_the_waiting_calls_go_with_the_oauth_token(tmp_path: Path) -> None:
    account = account_of_five()
    async with serving(account.app) as server, ReplayPbx([TRACES / "07-queue-ringall-answered"], speed=0) as pbx:
        _, port = pbx.address
        path = config(tmp_path, port, server, account)
        async with RunningDaemon(load_config(path)) as running:
            crm = running.daemon.crm
            assert crm is not None
            sender = crm.senders["amocrm"]
            # The call ends before anyone signed in: it waits, saying what to do.
            await wait_until(lambda: sender.stats().retried >= 2, 20, "the call waiting for the sign-in")
            assert "not signed in yet" in (sender.stats().last_error or "")
            assert "cti crm amocrm-code" in (sender.stats().last_error or "")
            assert account.requests == []

            code = account.issue_code()
            ran = await cti_async("crm", "amocrm-code", code, "--config", str(path))
            assert "amoCRM signed in" in ran.stdout and "next request" in ran.stdout
            await wait_until(lambda: account.uniq_counts() == {QUEUE: 1}, 20, "the call pushed once signed in")
            await idle(running)

            # The same code again: amoCRM takes a code once; said in words, the pair kept stays.
            kept = await kept_pair(path)
            again = await cti_async("crm", "amocrm-code", code, "--config", str(path), check=False)
            assert again.returncode == 1 and "did not take the code" in again.stderr
            assert "Authorization code has been revoked" in again.stderr and "20 minutes" in again.stderr
            assert await kept_pair(path) == kept

    (exchange, refused) = account.token_requests
    assert exchange.body == {"client_id": account.client_id, "client_secret": account.client_secret,
                             "redirect_uri": REDIRECT_URI, "grant_type": "authorization_code", "code": code}
    assert exchange.status == 200 and refused.status == 400
    assert kept["access_token"] == exchange.answer["access_token"]
    assert kept["refresh_token"] == exchange.answer["refresh_token"]
    assert 86400 - 60 < kept["expires_at"] - time.time() <= 86400  # a day, as amoCRM said (expires_in)
    ((seen),) = account.requests
    assert (seen.status, seen.authorization) == (200, f"Bearer {kept['access_token']}")
    assert account.refreshes == 0


@pytest.mark.parametrize("how", ["amocrm-says-401", "kept-expiry"])
async def test_an_access_token_running_out_midway_is_refreshed_once_and_each_call_pushed_once(
        tmp_path: Path, how: str) -> None:
    """Five calls end at once. Their access token has run out: by amoCRM's 401 (the kept expiry still says it is
    good), or by the expiry kept (a minute left: under the margin). One refresh, each call pushed once."""
    account = account_of_five()
    if how == "kept-expiry":
        account.access_seconds = 60.0
    async with serving(account.app) as server, ReplayPbx([TRACES / name for name in FIVE], speed=0) as pbx:
        _, port = pbx.address
        path = config(tmp_path, port, server, account)
        first = await sign_in(path, account)
        account.access_seconds = 86400.0
        if how == "amocrm-says-401":
            account.expire_access_tokens()
        async with RunningDaemon(load_config(path)) as running:
            await wait_until(lambda: pbx.finished.is_set() and set(account.uniq_counts()) == ADDED, 30,
                             "every call with a contact added")
            await idle(running)
    assert account.uniq_counts() == {key: 1 for key in ADDED}
    assert account.refreshes == 1
    refresh = account.token_requests[1]
    assert (refresh.body["grant_type"], refresh.body["refresh_token"]) == ("refresh_token", first["refresh_token"])
    kept = await kept_pair(path)
    assert kept["access_token"] == refresh.answer["access_token"] and "refreshing" not in kept
    assert kept["refresh_token"] in account.refresh_tokens  # the rotated one: good for the next refresh
    statuses = [seen.status for seen in account.requests]
    assert statuses.count(200) == 5
    assert all(seen.authorization == f"Bearer {kept['access_token']}" for seen in account.requests
               if seen.status == 200)
    if how == "kept-expiry":
        assert statuses == [200] * 5  # refreshed before sending: amoCRM never saw the old token
    else:
        assert set(statuses) == {401, 200} and all(seen.authorization == f"Bearer {first['access_token']}"
                                                   for seen in account.requests if seen.status == 401)


# -- two nodes over one store ---------------------------------------------------------------------------------------

class NoLinks:
    """No recording links here (no ``[crm] public_url``): the calls go without one."""

    def url(self, pbx: str, linkedid: str, index: int) -> str:
        raise NoRecordingLink("no [crm] public_url")


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[AmoCrmAccount, LocalServer, list[Store], httpx.AsyncClient]]:
    """amoCRM, and two store connections to one SQLite file (two nodes' stores)."""
    account = account_of_five()
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(serving(account.app))
        http = await stack.enter_async_context(httpx.AsyncClient())
        stores = [await stack.enter_async_context(open_store(StoreSettings(path=tmp_path / "crm.sqlite"),
                                                             region="RU")) for _ in range(2)]
        yield account, server, stores, http


def connector(account: AmoCrmAccount, server: LocalServer, store: Store, http: httpx.AsyncClient) -> AmoCrmConnector:
    settings = AmoCrmSettings.model_validate({
        "base_url": server.url, "client_id": account.client_id, "client_secret": account.client_secret,
        "redirect_uri": account.redirect_uri, "users": {"101": 5001, "102": 5002}})
    return AmoCrmConnector(settings, ConnectorDeps(store=lambda: store, http=http, links=NoLinks(), clock=time.time))


async def two_calls(store: Store, node: AmoCrmConnector) -> list[CrmItem]:
    """Two finished calls' requests (07's and 13's, as the planner makes them), queued and taken."""
    now = time.time()
    for trace in ("07-queue-ringall-answered", "13-blind-transfer-redirect"):
        for call, requests in plan_all(node.planner, trace_events(trace)).items():
            await store.queue_crm("amocrm", call, {}, requests, at=now)
    return await store.take_crm("amocrm", now=now, lease_seconds=60, limit=10)


@pytest.mark.parametrize("how", ["kept-expiry", "amocrm-says-401"])
async def test_two_nodes_refreshing_at_once_refresh_once_and_share_the_winners_pair(
        nodes: tuple[AmoCrmAccount, LocalServer, list[Store], httpx.AsyncClient], how: str) -> None:
    """Node A's refresh is held at amoCRM while node B comes to refresh the same pair: B waits for A's pair. The old
    refresh token is sent once: a second use would be refused (it rotates) and sign the account out."""
    account, server, (store_a, store_b), http = nodes
    node_a, node_b = connector(account, server, store_a, http), connector(account, server, store_b, http)
    assert node_a.tokens is not None and node_b.tokens is not None
    old = await node_a.tokens.sign_in(account.issue_code())
    if how == "kept-expiry":
        await store_a.put_crm_value("amocrm", OAUTH, {**old, "expires_at": time.time() - 10}, expect=old)
    else:
        account.expire_access_tokens()
    item_a, item_b = await two_calls(store_a, node_a)
    account.token_gate = gate = asyncio.Event()
    send_a = asyncio.create_task(node_a.send(item_a, {}))
    await wait_until(lambda: account.token_asks == 2, 10, "A's refresh held at amoCRM (after the sign-in's code)")
    send_b = asyncio.create_task(node_b.send(item_b, {}))
    await wait_until(lambda: node_b.tokens is not None and node_b.tokens.waited == 1, 10,
                     "B waiting for A's refresh")
    gate.set()
    sent_a, sent_b = await asyncio.wait_for(asyncio.gather(send_a, send_b), 10)
    assert isinstance(sent_a, Sent) and isinstance(sent_b, Sent)

    refreshes = [r for r in account.token_requests if r.body.get("grant_type") == "refresh_token"]
    assert [r.body["refresh_token"] for r in refreshes] == [old["refresh_token"]]  # once, never a second use
    assert account.refreshes == 1 and node_a.tokens.waited == 0
    kept = await store_b.crm_value("amocrm", OAUTH)
    assert kept is not None and "refreshing" not in kept
    assert kept["refresh_token"] in account.refresh_tokens
    assert await node_a.tokens.access_token() == await node_b.tokens.access_token() == kept["access_token"]
    assert account.uniq_counts() == {QUEUE: 1, "main:1795479510.36": 1}


# -- refused ---------------------------------------------------------------------------------------------------------

async def test_a_refresh_refused_waits_with_words_and_a_new_code_loses_nothing(tmp_path: Path) -> None:
    account = account_of_five()
    async with serving(account.app) as server, ReplayPbx([TRACES / "07-queue-ringall-answered"], speed=0) as pbx:
        _, port = pbx.address
        path = config(tmp_path, port, server, account)
        await sign_in(path, account)
        account.expire_access_tokens()
        account.revoke_refresh_tokens()  # three months unused, or the integration's access revoked
        async with RunningDaemon(load_config(path)) as running:
            crm = running.daemon.crm
            store = running.daemon.store
            assert crm is not None and store is not None
            sender = crm.senders["amocrm"]
            await wait_until(lambda: sender.stats().retried >= 2, 20, "the call waiting, its refresh refused")
            error = sender.stats().last_error or ""
            assert "amoCRM refused to refresh the OAuth token" in error and "Token has been revoked" in error
            assert "cti crm amocrm-code" in error
            (item,) = await store.list_crm_items(crm="amocrm", call=QUEUE)
            assert item.state == "pending" and "cti crm amocrm-code" in (item.last_error or "")
            [row] = json.loads((await cti_async("crm", "status", "--config", str(path), "--format",
                                                "json")).stdout)
            assert row["pending"] == 1 and row["failed"] == 0 and "cti crm amocrm-code" in row["last_error"]
            assert {seen.status for seen in account.requests} == {401}  # each try: refused, then no new pair
            assert account.uniq_counts() == {}

            await sign_in(path, account)  # the admin takes a new code
            await wait_until(lambda: account.uniq_counts() == {QUEUE: 1}, 20, "the waiting call pushed")
            await idle(running)
            (item,) = await store.list_crm_items(crm="amocrm", call=QUEUE)
            assert item.state == "sent"
    assert account.refreshes == 0  # every refresh was refused: the new code's pair did it


# -- the configuration ----------------------------------------------------------------------------------------------

def test_a_long_lived_token_and_oauth_both_are_refused_at_load(tmp_path: Path) -> None:
    both = write_config(tmp_path, 5038, sections={"crm.amocrm": 'base_url = "https://example.amocrm.ru"\n'
                                                                'token = "t"\nclient_id = "c"\n'})
    with pytest.raises(ConfigError, match=r"either a long-lived token .* or OAuth .* not both"):
        load_config(both)
    half = write_config(tmp_path, 5038, sections={"crm.amocrm": 'base_url = "https://example.amocrm.ru"\n'
                                                                'client_id = "c"\n'})
    with pytest.raises(ConfigError, match=r"OAuth needs client_id, client_secret .* and redirect_uri"):
        load_config(half)
    token = write_config(tmp_path, 5038, sections={"crm.amocrm": 'base_url = "https://example.amocrm.ru"\n'
                                                                 'token = "t"\n'})
    ran = cti("crm", "amocrm-code", "def50200abcdef", "--config", str(token), check=False)
    assert ran.returncode == 2 and "client_id" in ran.stderr
