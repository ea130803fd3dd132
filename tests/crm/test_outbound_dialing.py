"""An outbound call reaches the CRMs when the PBX dials the customer, not when the customer answers (end to end).

The replay PBX plays trace 33-phone-outbound-remote-hangup (agent 103 dials 84957770033 from the desk phone; the
customer answers 4 s later) into a real daemon and holds it right after the ``DialBegin`` to the trunk: the
customer's phone is ringing and nobody answered. By then Bitrix24's test portal has the call registered as outgoing
(``TYPE`` 1) with its card shown to 103 (``SHOW`` 1), and Zammad's Generic CTI has its ``newCall`` (direction out,
the agent's name). Played on, the answer sends nothing more to Bitrix24 (Zammad gets its ``answer``), and the end
finishes the call once.
"""

from __future__ import annotations

from pathlib import Path

from asterisk.replay import ReplayPbx
from asterisk.replay.trace import load_trace
from tests.crm.bitrix24_server import Bitrix24Portal, PortalCall
from tests.crm.local_server import serving
from tests.crm.test_bitrix24 import daemon_settings, free_port, install, portal_with_users
from tests.crm.test_zammad import zammad_daemon
from tests.crm.zammad_server import ZammadCti
from tests.daemon.conftest import RunningDaemon, leg_event, serve_through, wait_until
from tests.traces import TRACES

TRACE = "33-phone-outbound-remote-hangup"
CALL = "main:1795480480.339"
EVENTS = [e.message for e in load_trace(TRACES / TRACE).events]
#: The moment the PBX dials the customer: the trunk's channel has no number before it.
DIAL = leg_event("DialBegin", "PJSIP/trunk-")


def the_call(portal: Bitrix24Portal) -> PortalCall | None:
    found = [c for c in portal.calls.values() if c.params.get("EXTERNAL_CALL_ID") == CALL]
    return found[0] if found else None


async def test_bitrix24_shows_the_card_while_the_customers_phone_rings(tmp_path: Path) -> None:
    portal = portal_with_users()
    http_port = free_port()
    async with serving(portal.app) as server, ReplayPbx([TRACES / TRACE], speed=0) as pbx:
        portal.base_url = server.url
        _, port = pbx.address
        pbx.pause()
        async with RunningDaemon(daemon_settings(tmp_path, port, server.url, http_port, [TRACE])):
            await install(http_port, portal)
            await serve_through(pbx, EVENTS, DIAL, "103 dialling the customer")
            # Held here: the customer's phone rings, nobody answered. The agent already sees the card.
            await wait_until(lambda: (call := the_call(portal)) is not None and call.shown == {3}, 20,
                             "the call registered with its card shown to 103")
            call = the_call(portal)
            assert call is not None and call.finished is None
            assert call.params["TYPE"] == 1 and call.params["SHOW"] == 1
            assert call.params["USER_PHONE_INNER"] == "103" and call.params["PHONE_NUMBER"] == "84957770033"
            served = pbx.position
            assert not any(m.event == "DialEnd" and m.get("DialStatus") == "ANSWER" for m in EVENTS[:served])
            pbx.resume()
            await wait_until(lambda: call.record is not None, 30, "the call finished, its record attached")

    assert portal.call_sequence(call.call_id) == ["register", "finish", "attachrecord"]
    assert call.finished is not None and call.finished["STATUS_CODE"] == "200"
    assert call.finished["USER_PHONE_INNER"] == "103" and call.finished["DURATION"] == 8
    assert call.shown == set()
    assert [r for r in portal.requests if r.status != 200] == []


async def test_zammad_logs_the_outbound_call_when_it_is_dialled(tmp_path: Path) -> None:
    zammad = ZammadCti()
    async with serving(zammad.app) as server, \
            zammad_daemon(tmp_path, [TRACE], zammad, server, paused=True) as (pbx, _running):
        await serve_through(pbx, EVENTS, DIAL, "103 dialling the customer")
        await wait_until(lambda: zammad.events_of(CALL) == ["newCall"], 20, "Zammad got the newCall")
        new_call = zammad.requests[0].params
        assert (new_call["direction"], new_call["from"], new_call["to"]) == ("out", "103", "84957770033")
        assert new_call["user"] == "103"  # no panel user is named for 103 here: the extension stands in
        pbx.resume()
        await wait_until(lambda: zammad.events_of(CALL) == ["newCall", "answer", "hangup"], 20, "answer and hangup")
    assert zammad.calls[CALL].comment == "normalClearing"
