"""amoCRM end to end: real traces replayed into a real daemon, its calls API over HTTP (tests/crm/amocrm_server.py).

* One ``POST /api/v4/calls`` per call at its end, with the fields amoCRM documents: direction, ``uniq``, the talk,
  the customer's phone, ``call_status`` from our outcome, the agent's amoCRM user, a signed recording link.
* A call from a number amoCRM has no contact for is not added (amoCRM's rule): sent, noted, not a failure.
* Faults: amoCRM down a while, over its 7 requests a second (429), answering 503, hung (a timeout): afterwards every
  call is there once. An expired token is retried with "renew it" until the admin renews it (a restart with the new
  token sends what waited); a call amoCRM refuses as such (400) is given up with amoCRM's words.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from asterisk.replay import ReplayPbx
from tests.conftest import UNIT
from tests.crm.amocrm_server import AmoCrmAccount
from tests.crm.local_server import LocalServer, serving
from tests.daemon.conftest import RunningDaemon, settings_for, wait_until
from tests.traces import TRACES

TOKEN = "long-lived-token-1"
QUEUE = "main:1795479360.12"  # 07: 102 answers
ABANDONED = "main:1795479383.16"  # 08: the caller gives up in the queue
TRANSFER = "main:1795479510.36"  # 13: 101 answers, transfers to 104
CLICK = "main:1795479586.44"  # 16: 101 calls 89161234567 out
BUSY = "main:1795479314.6"  # 04: 103 refuses busy
FIVE = ["07-queue-ringall-answered", "08-queue-abandon", "13-blind-transfer-redirect", "16-click-to-call-answered",
        "04-direct-busy"]
#: The customers of FIVE amoCRM has a contact for (08's caller, 79990001122, it has not).
CONTACTS = {"+7 916 123-45-00": 101, "79160001313": 102, "89161234567": 103, "74991112233": 104}
ADDED = {QUEUE, TRANSFER, CLICK, BUSY}


def sections(server: LocalServer, token: str = TOKEN, extra: str = "", *, crm: str = "") -> dict[str, str]:
    return {"crm": "retry_first_seconds = 0.05\nretry_max_seconds = 0.2\n" + crm,
            "crm.amocrm": f'base_url = "{server.url}"\ntoken = "{token}"\nsource = "Asterisk"\n'
                          'users = { "101" = 5001, "102" = "5002" }\n' + extra}


async def idle(running: RunningDaemon) -> None:
    """Wait until nothing is pending or in flight in the daemon's amoCRM outbox."""
    crm = running.daemon.crm
    store = running.daemon.store
    assert crm is not None and store is not None
    sender = crm.senders["amocrm"]
    async with asyncio.timeout(20 * UNIT):
        while await store.list_crm_items(crm="amocrm", state="pending") or sender.stats().in_flight:
            await asyncio.sleep(0.02)


@asynccontextmanager
async def amocrm_daemon(tmp_path: Path, traces: list[str], server: LocalServer, token: str = TOKEN, extra: str = "",
                        *, crm: str = "") -> AsyncIterator[tuple[ReplayPbx, RunningDaemon]]:
    async with ReplayPbx([TRACES / name for name in traces], speed=0) as pbx:
        _, port = pbx.address
        async with RunningDaemon(settings_for(tmp_path, port, sections=sections(server, token, extra,
                                                                                 crm=crm))) as running:
            yield pbx, running


async def test_one_call_per_call_with_its_fields(tmp_path: Path) -> None:
    account = AmoCrmAccount(token=TOKEN, contacts=CONTACTS, users=(5001, 5002))
    async with serving(account.app) as server, \
            amocrm_daemon(tmp_path, FIVE, server, crm='public_url = "https://cti.example.ru/"\n') as (pbx, running):
        await wait_until(lambda: pbx.finished.is_set() and set(account.uniq_counts()) == ADDED, 30,
                         "every call with a contact added")
        await idle(running)
        store = running.daemon.store
        assert store is not None
        (not_added,) = await store.list_crm_items(crm="amocrm", call=ABANDONED)
        (status,) = [s for s in await store.crm_status() if s.crm == "amocrm"]
    assert account.uniq_counts() == {key: 1 for key in ADDED}
    assert [seen.status for seen in account.requests] == [200] * 5
    assert all(seen.authorization == f"Bearer {TOKEN}" for seen in account.requests)

    queue = account.call(QUEUE)
    assert queue is not None
    link = queue.pop("link")
    assert link.startswith("https://cti.example.ru/crm/recording/") and ".wav" not in link
    assert queue == {"direction": "inbound", "uniq": QUEUE, "duration": 12, "source": "Asterisk",
                     "phone": "79161234500", "call_status": 4, "created_at": queue["created_at"],
                     "responsible_user_id": 5002, "created_by": 5002, "request_id": "0"}

    click = account.call(CLICK)
    assert click is not None
    assert (click["direction"], click["phone"], click["call_status"]) == ("outbound", "89161234567", 4)
    assert click["responsible_user_id"] == 5001 and click["duration"] == 13

    busy = account.call(BUSY)
    assert busy is not None
    assert (busy["call_status"], busy["duration"]) == (7, 0) and "responsible_user_id" not in busy

    transfer = account.call(TRANSFER)
    assert transfer is not None and transfer["responsible_user_id"] == 5001  # who took it first

    # 08's caller has no contact: amoCRM added nothing, as it documents; sent, not failed, its words kept.
    assert not_added.state == "sent" and not_added.answer["added"] is False
    assert "not added" in not_added.answer["reason"]
    assert (status.sent, status.failed, status.pending) == (5, 0, 0)


async def test_down_rate_limited_503_and_hung_then_every_call_once(tmp_path: Path) -> None:
    account = AmoCrmAccount(token=TOKEN, contacts=CONTACTS, users=(5001, 5002), rate_limit=1)
    account.fail_next(2, 503)
    async with serving(account.app) as server:
        await server.stop()
        # Our bucket allows more than amoCRM's (1 a second here): its 429s are retried.
        extra = f"rate = 50\nburst = 50\ntimeout = {0.5 * UNIT}\n"
        async with amocrm_daemon(tmp_path, FIVE, server, extra=extra) as (pbx, running):
            crm = running.daemon.crm
            assert crm is not None
            sender = crm.senders["amocrm"]
            await wait_until(lambda: pbx.finished.is_set() and sender.stats().retried >= 5, 30,
                             "the calls ended and their requests were retried while amoCRM was down")
            account.hang_next(1)
            await server.start()
            await wait_until(lambda: set(account.uniq_counts()) == ADDED, 40, "every call added once amoCRM is back")
            await idle(running)
            account.release()
    assert account.uniq_counts() == {key: 1 for key in ADDED}
    statuses = [seen.status for seen in account.requests]
    assert statuses.count(503) == 2 and statuses.count(504) <= 1
    assert statuses.count(429) >= 1  # five calls at once, amoCRM takes one a second
    assert statuses.count(200) == 5  # each call once (the hung request was never processed)


async def test_an_expired_token_waits_for_the_admin_then_nothing_is_lost(tmp_path: Path) -> None:
    account = AmoCrmAccount(token=TOKEN, contacts=CONTACTS, users=(5001, 5002))
    account.expire_token()
    async with serving(account.app) as server, ReplayPbx([TRACES / "07-queue-ringall-answered"], speed=0) as pbx:
        _, port = pbx.address
        async with RunningDaemon(settings_for(tmp_path, port, sections=sections(server))) as running:
            crm = running.daemon.crm
            store = running.daemon.store
            assert crm is not None and store is not None
            sender = crm.senders["amocrm"]
            await wait_until(lambda: sender.stats().retried >= 2, 20, "the refused request retried")
            assert "the amoCRM token was refused" in (sender.stats().last_error or "")
            assert "renew it" in (sender.stats().last_error or "")
            (item,) = await store.list_crm_items(crm="amocrm", call=QUEUE)
            assert item.state == "pending" and "renew it" in (item.last_error or "")
        assert account.added == []
        # The admin renews the token and restarts the daemon with it: the call that waited is sent.
        renewed = account.renew_token()
        async with RunningDaemon(settings_for(tmp_path, port, sections=sections(server, renewed))) as running:
            await wait_until(lambda: account.uniq_counts() == {QUEUE: 1}, 20, "the waiting call sent")
            await idle(running)


async def test_a_call_amocrm_refuses_is_given_up_with_its_words(tmp_path: Path) -> None:
    account = AmoCrmAccount(token=TOKEN, contacts=CONTACTS, users=(5001,))  # 5002 (102's) is no user of the account
    async with serving(account.app) as server, \
            amocrm_daemon(tmp_path, ["07-queue-ringall-answered"], server) as (_pbx, running):
        crm = running.daemon.crm
        store = running.daemon.store
        assert crm is not None and store is not None
        await wait_until(lambda: crm.senders["amocrm"].stats().failed == 1, 20, "the call given up")
        (item,) = await store.list_crm_items(crm="amocrm", state="failed")
    assert item.attempts == 1  # a refusal is not retried
    assert "HTTP 400" in (item.last_error or "") and "responsible_user_id" in (item.last_error or "")
    assert account.added == []
