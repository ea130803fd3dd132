"""Zammad's connector against Zammad's Generic CTI over HTTP, one request at a time: an agent named as the panel
knows them, and each of Zammad's refusals read by its meaning, the endpoint's token never in an error."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from companion.crm.connector import ConnectorDeps, GiveUp, Retry, Sent
from companion.crm.zammad import ZammadConnector
from cti.crm import CrmItem
from cti.crm.zammad import agent_ref
from store.repository import User
from store.sqlite import SqliteStore
from tests.crm.local_server import LocalServer, serving
from tests.crm.zammad_server import ZammadCti
from ui_bridge.crm_settings import ZammadSettings
from ui_bridge.signed_links import SignedLinks

CALL = "main:1795479242.0"
FIELDS = {"from": "79161234567", "to": "74950000001", "direction": "in", "callId": CALL}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "cti.sqlite")
    yield opened
    await opened.close()


async def connector(store: SqliteStore, url: str, **settings: object) -> tuple[ZammadConnector, httpx.AsyncClient]:
    http = httpx.AsyncClient()
    links = SignedLinks(None, None, 72, time.time)
    deps = ConnectorDeps(store=lambda: store, http=http, links=links, clock=time.time)
    return ZammadConnector(ZammadSettings.model_validate({"url": url, "timeout": 5, **settings}), deps), http


async def send(zammad: ZammadConnector, kind: str, payload: dict[str, object], seq: int = 1) -> object:
    item = CrmItem(id=seq, crm="zammad", call=CALL, seq=seq, kind=kind, payload=payload, created_at=time.time(),
                   attempts=1, next_try_at=time.time())
    return await zammad.send(item, {})


async def test_an_agent_is_named_by_the_panel_then_the_mapping_then_the_extension(store: SqliteStore) -> None:
    await store.add_user(User(name="anna", role="agent", extension="103", display_name="Анна Смирнова"))
    await store.add_user(User(name="oleg", role="agent", extension="102", display_name="Олег Петров", pbxs=("spb",)))
    cti = ZammadCti()
    async with serving(cti.app) as server:
        zammad, http = await connector(store, cti.endpoint(server.url), users={"104": "dmitry"})
        async with http:
            assert await zammad.agent_name("main", "103") == "Анна Смирнова"
            assert await zammad.agent_name("main", "102") == "102"  # Олег is 102 on the spb PBX only
            assert await zammad.agent_name("spb", "102") == "Олег Петров"
            assert await zammad.agent_name("main", "104") == "dmitry"
            assert isinstance(await send(zammad, "newCall", {"event": "newCall", **FIELDS}), Sent)
            answer = {"event": "answer", **FIELDS, "user": agent_ref("main", "103"), "answeringNumber": "103"}
            assert isinstance(await send(zammad, "answer", answer, 2), Sent)
    assert cti.calls[CALL].user == "Анна Смирнова"


async def refusal(store: SqliteStore, cti: ZammadCti, server: LocalServer, url: str | None = None) -> object:
    zammad, http = await connector(store, url or cti.endpoint(server.url))
    async with http:
        return await send(zammad, "newCall", {"event": "newCall", **FIELDS})


async def test_a_wrong_token_is_retried_with_what_to_do_and_the_token_hidden(store: SqliteStore) -> None:
    cti = ZammadCti()
    async with serving(cti.app) as server:
        wrong = f"{server.url}/api/v1/cti/not-the-token-Zq81"
        result = await refusal(store, cti, server, wrong)
    assert isinstance(result, Retry) and "HTTP 401" in result.reason and "Generic CTI" in result.reason
    assert "not-the-token-Zq81" not in result.reason


@pytest.mark.parametrize(("enabled", "bad_direction", "expected"), [
    (False, False, Retry),  # the integration switched off: the admin's to put right
    (True, True, GiveUp),  # "Invalid direction!": the request as such
])
async def test_422s_by_their_words(store: SqliteStore, enabled: bool, bad_direction: bool,
                                   expected: type) -> None:
    cti = ZammadCti(enabled=enabled)
    async with serving(cti.app) as server:
        zammad, http = await connector(store, cti.endpoint(server.url))
        async with http:
            payload = {"event": "newCall", **FIELDS, **({"direction": "sideways"} if bad_direction else {})}
            result = await send(zammad, "newCall", payload)
    assert isinstance(result, expected)
    assert "HTTP 422" in getattr(result, "reason", "")


async def test_an_answer_of_a_call_zammad_does_not_know_is_retried(store: SqliteStore) -> None:
    """Zammad hides "No such call_id" behind an error id (500): it cannot be told from a fault, so it is retried
    (until give_up_hours): the newCall before it was given up, or is being taken again."""
    cti = ZammadCti()
    async with serving(cti.app) as server:
        zammad, http = await connector(store, cti.endpoint(server.url))
        async with http:
            result = await send(zammad, "answer", {"event": "answer", **FIELDS})
    assert isinstance(result, Retry) and "Please contact your administrator" in result.reason
