"""Bitrix24 end to end: real traces replayed into a real daemon, the portal's REST API (``bitrix24_server.py``) over
HTTP, the application installed through the daemon's own install handler.

* Each call arrives as Bitrix24 documents it: register → show → hide → finish → attachRecord (the portal fetches
  the recording through its signed link and checks it is audio), a transfer finished by its target, a missed call
  with 603-S / 486, every call finished once; ``CALL_START_DATE`` in the site's zone with its offset; the
  transcript, once stored, attached after ``finish``.
* Click-to-call from a CRM card: the ``ONEXTERNALCALLSTART`` event answered at once, the call originated through
  AMI, and that ``CALL_ID`` finished (never registered again); the event delivered twice is handled once.
* Hostile input on the event handler: a wrong token, missing fields, a 10 MB body, control characters, letters in
  the number: 4xx, never a traceback. The install handler refuses another portal, another ``member_id`` once
  installed, missing tokens and a huge body, and keeps the tokens it has.
* A click-to-call the PBX refuses (or cannot get: not connected) is finished in Bitrix24 with 503, through the outbox.
"""

from __future__ import annotations

import shutil
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from asterisk.replay import ReplayPbx
from cti.transcripts import Transcript, Word
from tests.crm.bitrix24_server import Bitrix24Portal
from tests.crm.local_server import serving
from tests.daemon.conftest import RunningDaemon, settings_for, wait_until
from tests.traces import TRACES
from tests.ui_bridge.qa_calls import store_transcript

USERS = {1: "101", 2: "102", 3: "103", 4: "104", 5: "105"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def portal_with_users(**kw: Any) -> Bitrix24Portal:
    portal = Bitrix24Portal(**kw)
    for user, phone in USERS.items():
        portal.add_user(user, phone)
    return portal


def recordings(tmp_path: Path, traces: list[str]) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir(exist_ok=True)
    for name in traces:
        source = TRACES / name / "recordings"
        if source.is_dir():
            for wav in source.glob("*.wav"):
                shutil.copy(wav, folder / wav.name)
    return folder


def daemon_settings(tmp_path: Path, ami_port: int, portal: str, http_port: int, traces: list[str],
                    **sections: str) -> Any:
    return settings_for(tmp_path, ami_port, http_port=http_port, sections={**sections,
        "crm": (f'public_url = "http://127.0.0.1:{http_port}"\n'
                "retry_first_seconds = 0.05\nretry_max_seconds = 0.2\n"),
        "crm.bitrix24": (f'portal = "{portal}"\nclient_id = "local.cti.test"\nclient_secret = "test-secret"\n'
                         f'oauth_url = "{portal}/oauth/token/"\nusers = {{ "101" = 1, "102" = 2 }}\n'),
        "recording": f'dir = "{recordings(tmp_path, traces)}"',
    })


async def install(http_port: int, portal: Bitrix24Portal) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"http://127.0.0.1:{http_port}/crm/bitrix24/install", data=portal.install_form())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "success"}


def registered(portal: Bitrix24Portal, external: str) -> str:
    """The ``CALL_ID`` the portal gave the call the PBX names ``external``."""
    (call,) = [c for c in portal.calls.values() if c.params.get("EXTERNAL_CALL_ID") == external]
    return call.call_id


TRANSCRIPT = Transcript(words=(Word("agent", "Здравствуйте", 0.6, 1.4, 1.0), Word("agent", "слушаю", 1.5, 2.0, 1.0),
                               Word("customer", "Добрый", 2.7, 3.0, 1.0), Word("customer", "день", 3.1, 3.5, 1.0),
                               Word("agent", "Да", 11.2, 11.4, 1.0)),
                        engine="vosk", model="vosk-model-small-ru", duration=12.6)


async def test_each_call_is_registered_shown_hidden_finished_and_its_record_attached(tmp_path: Path) -> None:
    traces = ["07-queue-ringall-answered", "13-blind-transfer-redirect", "08-queue-abandon", "04-direct-busy"]
    portal = portal_with_users()
    http_port = free_port()
    async with serving(portal.app) as server, ReplayPbx([TRACES / t for t in traces], speed=0) as pbx:
        portal.base_url = server.url
        _, port = pbx.address
        pbx.pause()  # the application is installed before the first call
        # The journal's writer commits only every 10 s: a record's link is served at once all the same.
        settings = daemon_settings(tmp_path, port, server.url, http_port, traces, store="flush_interval = 10")
        async with RunningDaemon(settings) as running:
            await install(http_port, portal)
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            await wait_until(lambda: sum(c.finished is not None for c in portal.calls.values()) == 4, 30,
                             "four calls finished")
            await wait_until(lambda: sum(c.record is not None for c in portal.calls.values()) == 2, 30,
                             "two records attached")
            # The transcription service stores the queue call's transcript: the push attaches it.
            store, crm = running.daemon.store, running.daemon.crm
            assert store is not None and crm is not None
            record = await store.get_call("1795479360.12", pbx="main")
            assert record is not None
            await store_transcript(store, record, TRANSCRIPT)
            crm.push.transcribed("main", "1795479360.12")
            queue = registered(portal, "main:1795479360.12")
            await wait_until(lambda: portal.calls[queue].transcript is not None, 30, "the transcript attached")
            # Nothing was tried twice: a record's link is served at the first try (the journal flushed before it).
            assert crm.senders["bitrix24"].retried == 0

    assert portal.call_sequence(queue) == ["register", "show", "show", "show", "hide", "finish", "attachrecord",
                                           "attachtranscription"]
    call = portal.calls[queue]
    assert call.params["TYPE"] == 2 and call.params["PHONE_NUMBER"] == "79161234500"
    # As the portal shows it to its users: the site's time ([pbx] timezone, Moscow) with its offset, the moment the
    # first phone rang.
    start = datetime.fromisoformat(call.params["CALL_START_DATE"])
    assert call.params["CALL_START_DATE"].endswith("+03:00")
    assert record.started_at <= start.timestamp() <= (record.answered_at or 0)
    assert call.transcript == [
        {"SIDE": "User", "START_TIME": 0, "STOP_TIME": 2, "MESSAGE": "Здравствуйте слушаю"},
        {"SIDE": "Client", "START_TIME": 2, "STOP_TIME": 4, "MESSAGE": "Добрый день"},
        {"SIDE": "User", "START_TIME": 11, "STOP_TIME": 12, "MESSAGE": "Да"}]
    assert call.finished is not None and call.finished["USER_ID"] == 2 and call.finished["STATUS_CODE"] == "200"
    assert call.record is not None and call.record["FILENAME"] == "1795479360.12.wav" and call.record["size"] > 44
    assert call.shown == set()

    transfer = registered(portal, "main:1795479510.36")
    assert portal.call_sequence(transfer) == ["register", "show", "show", "hide", "finish", "attachrecord"]
    assert portal.calls[transfer].finished["USER_PHONE_INNER"] == "104"  # type: ignore[index]

    abandoned = registered(portal, "main:1795479383.16")
    assert portal.calls[abandoned].finished["STATUS_CODE"] == "603-S"  # type: ignore[index]
    assert portal.calls[abandoned].record is None
    busy = registered(portal, "main:1795479314.6")
    assert portal.call_sequence(busy) == ["register", "finish"]
    assert portal.calls[busy].finished["STATUS_CODE"] == "486"  # type: ignore[index]
    # Nothing refused, nothing sent twice.
    assert [r for r in portal.requests if r.status != 200] == []
    assert len([m for m in portal.methods() if m.endswith(".register")]) == 4


async def test_click_to_call_from_a_card_is_originated_and_that_call_finished(tmp_path: Path) -> None:
    traces = ["16-click-to-call-answered"]
    portal = portal_with_users()
    http_port = free_port()
    async with serving(portal.app) as server, ReplayPbx([TRACES / t for t in traces], speed=0) as pbx:
        portal.base_url = server.url
        _, port = pbx.address
        pbx.pause()
        async with RunningDaemon(daemon_settings(tmp_path, port, server.url, http_port, traces)):
            await install(http_port, portal)
            event = portal.start_call(1, "8 (916) 123-45-67", entity=("CONTACT", 7))
            url = f"http://127.0.0.1:{http_port}/crm/bitrix24/event"
            async with httpx.AsyncClient() as client:
                first = await client.post(url, data=event)
                again = await client.post(url, data=event)  # the portal delivers it again
                assert first.status_code == 200 and first.json() == {"status": "accepted"}
                assert again.status_code == 200 and again.json() == {"status": "duplicate"}
                await wait_until(lambda: any(a.message.action == "Originate" for a in pbx.received_actions), 10,
                                 "the call originated")
                (originate,) = [a.message for a in pbx.received_actions if a.message.action == "Originate"]
                assert originate.get("Channel") == "PJSIP/101" and originate.get("Exten") == "89161234567"
                pbx.resume()  # the PBX makes the call: 101's phone, then the customer
                call_id = event["data[CALL_ID]"]
                await wait_until(lambda: portal.calls[call_id].record is not None, 30, "finished, record attached")
                await hostile_input(client, url, event)

    assert portal.call_sequence(call_id) == ["finish", "attachrecord"]
    assert not [m for m in portal.methods() if m.endswith(".register")]
    finished = portal.calls[call_id].finished
    assert finished is not None and finished["USER_ID"] == 1 and finished["STATUS_CODE"] == "200"
    assert finished["DURATION"] == 13


async def hostile_input(client: httpx.AsyncClient, url: str, event: dict[str, str]) -> None:
    """What anyone on the network may post to the event handler: refused with a 4xx, nothing started."""
    wrong = {**event, "auth[application_token]": "0" * 32, "data[CALL_ID]": "externalCall.x.1"}
    assert (await client.post(url, data=wrong)).status_code == 403
    assert (await client.post(url, data={k: v for k, v in event.items() if k != "auth[application_token]"}
                              )).status_code == 403
    for name, value in (("data[CALL_ID]", "externalCall.\x1b[2J.1"), ("data[CALL_ID]", ""),
                        ("data[PHONE_NUMBER]", "8916CALLME"), ("data[USER_ID]", "1; DROP"),
                        ("event", "ONAPPUNINSTALL")):
        answer = await client.post(url, data={**event, name: value, "data[CALL_ID]": event["data[CALL_ID]"] + "x"}
                                   if name != "data[CALL_ID]" else {**event, name: value})
        assert answer.status_code == 400, (name, value, answer.text)
        assert "Traceback" not in answer.text
    huge = await client.post(url, content=b"event=ONEXTERNALCALLSTART&x=" + b"a" * (10 * 1024 * 1024),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413
    assert (await client.post(url, content=b"\xff\xfe")).status_code in (400, 403)


async def test_faults_leave_every_sequence_complete_in_order_and_single(tmp_path: Path) -> None:
    """Rate limit answers, an access token that expires mid-call, the portal down for a while: afterwards each call's
    sequence is the documented one, once; the rotated refresh token is the one kept."""
    traces = ["07-queue-ringall-answered", "13-blind-transfer-redirect"]
    portal = portal_with_users(burst=8)  # a small bucket: QUERY_LIMIT_EXCEEDED under the daemon's own pace
    http_port = free_port()
    async with serving(portal.app) as server, ReplayPbx([TRACES / t for t in traces], speed=0) as pbx:
        portal.base_url = server.url
        _, port = pbx.address
        pbx.pause()
        async with RunningDaemon(daemon_settings(tmp_path, port, server.url, http_port, traces)) as running:
            await install(http_port, portal)
            portal.fail_next(3)  # QUERY_LIMIT_EXCEEDED, 503
            pbx.resume()
            await wait_until(lambda: any(r.method.endswith(".show") and r.status == 200 for r in portal.requests),
                             20, "the first card shown")
            portal.expire_access_tokens()
            await server.stop()  # the portal down while the calls go on
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            await server.start()
            await wait_until(lambda: sum(c.record is not None for c in portal.calls.values()) == 2, 60,
                             "both calls finished and their records attached")
            store = running.daemon.store
            assert store is not None
            kept = await store.crm_value("bitrix24", "oauth")

    assert portal.refreshes >= 1
    assert kept is not None and kept["refresh_token"] in portal.refresh_tokens  # the rotated one, still good
    assert any(r.error == "QUERY_LIMIT_EXCEEDED" for r in portal.requests)
    assert any(r.error == "expired_token" for r in portal.requests)
    queue = registered(portal, "main:1795479360.12")
    assert portal.call_sequence(queue) == ["register", "show", "show", "show", "hide", "finish", "attachrecord"]
    transfer = registered(portal, "main:1795479510.36")
    assert portal.call_sequence(transfer) == ["register", "show", "show", "hide", "finish", "attachrecord"]
    assert len(portal.calls) == 2  # a register repeated after a lost answer got the same CALL_ID


async def test_install_refusals_and_a_click_to_call_the_pbx_refuses_is_finished_503(tmp_path: Path) -> None:
    """The AMI user may not originate (``write`` without ``originate``): the PBX refuses the click-to-call. Then
    the PBX goes away: the next click-to-call cannot reach it. Each CRM call is finished with 503 and the reason."""
    traces = ["16-click-to-call-answered"]
    portal = portal_with_users()
    http_port = free_port()
    async with serving(portal.app) as server, ReplayPbx([TRACES / t for t in traces], speed=0,
                                                         write="agent,call,reporting") as pbx:
        portal.base_url = server.url
        _, port = pbx.address
        pbx.pause()
        async with RunningDaemon(daemon_settings(tmp_path, port, server.url, http_port, traces)) as running:
            base = f"http://127.0.0.1:{http_port}/crm/bitrix24"
            async with httpx.AsyncClient() as client:
                elsewhere = {**portal.install_form(), "auth[domain]": "evil.bitrix24.ru"}
                assert (await client.post(f"{base}/install", data=elsewhere)).status_code == 403
                for missing in ("auth[refresh_token]", "auth[member_id]", "auth[domain]"):
                    form = {k: v for k, v in portal.install_form().items() if k != missing}
                    answer = await client.post(f"{base}/install", data=form)
                    assert answer.status_code == 400 and missing in answer.json()["error"]["message"], missing
                assert (await client.post(f"{base}/install", data={"event": "ONAPPINSTALL"})).status_code == 400
                huge = await client.post(f"{base}/install", content=b"auth[access_token]=" + b"a" * (10 << 20),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
                assert huge.status_code == 413
                store = running.daemon.store
                assert store is not None and await store.crm_value("bitrix24", "oauth") is None
                await install(http_port, portal)
                kept = await store.crm_value("bitrix24", "oauth")
                other = {**portal.install_form(), "auth[member_id]": "f" * 32}  # another portal's application
                assert (await client.post(f"{base}/install", data=other)).status_code == 403
                assert await store.crm_value("bitrix24", "oauth") == kept

                refused = portal.start_call(1, "89161234567")
                assert (await client.post(f"{base}/event", data=refused)).json() == {"status": "accepted"}
                await wait_until(lambda: portal.calls[refused["data[CALL_ID]"]].finished is not None, 30,
                                 "the refused call finished")
                await pbx.close()  # the PBX gone: the daemon is not connected
                await wait_until(lambda: not running.daemon.links["main"].connected, 10, "the link down")
                unreachable = portal.start_call(2, "89161234568")
                assert (await client.post(f"{base}/event", data=unreachable)).json() == {"status": "accepted"}
                await wait_until(lambda: portal.calls[unreachable["data[CALL_ID]"]].finished is not None, 30,
                                 "the unreachable call finished")

    for event, user, why in ((refused, 1, "refused Originate"), (unreachable, 2, "not connected")):
        finished = portal.calls[event["data[CALL_ID]"]].finished
        assert finished is not None and finished["STATUS_CODE"] == "503" and finished["DURATION"] == 0
        assert finished["USER_ID"] == user and why in finished["FAILED_REASON"], finished
        assert portal.call_sequence(event["data[CALL_ID]"]) == ["finish"]
    assert [a.message.action for a in pbx.received_actions].count("Originate") == 1
    assert not [m for m in portal.methods() if m.endswith(".register")]
