"""Over real HTTP and WebSocket: numbers shown in the configured style next to the raw ones, and a backwards date
range refused with a message that says so."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx

from cti.directory import Contact
from tests.panel_env import panel_env
from tests.ui_bridge.wsclient import WsClient

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 calls the DID 74950000101
CLICK_TO_CALL = "16-click-to-call-answered"  # 101 calls 89161234567


async def test_messages_and_api_rows_carry_the_numbers_in_the_national_style_and_keep_the_raw_ones() -> None:
    async with panel_env([TRANSFER, CLICK_TO_CALL], speed=0, directory_extra='number_style = "national"') as env:
        await env.store.add_contacts([Contact(name="Зайцева Ольга", phones=("+7 916 000 13 13", "102"))])
        admin = await WsClient.connect(env, "admin")
        env.start_calls()
        ringing = await admin.wait_for("call.ringing", timeout=30, caller="79160001313")
        assert (ringing["caller_display"], ringing["called_display"]) == ("8 (916) 000-13-13", "8 (495) 000-01-01")
        ended = await admin.wait_for("call.ended", timeout=30, caller="101")
        assert (ended["caller"], ended["caller_display"]) == ("101", "101")  # an extension stays as it is
        assert (ended["called"], ended["called_display"]) == ("89161234567", "8 (916) 123-45-67")
        await admin.wait_for("call.ended", timeout=30, caller="79160001313")
        await env.store.flush()
        async with httpx.AsyncClient(base_url=env.url) as http:
            await http.post("/api/login", json={"name": "admin", "password": env.users["admin"][0]})
            calls = (await http.get("/api/calls")).json()["calls"]
            assert {(c["caller"], c["caller_display"], c["called"], c["called_display"]) for c in calls} == {
                ("79160001313", "8 (916) 000-13-13", "74950000101", "8 (495) 000-01-01"),
                ("101", "101", "89161234567", "8 (916) 123-45-67"),
            }
            [found] = (await http.get("/api/contacts", params={"q": "зайцева"})).json()["contacts"]
            assert found["phones"] == ["+7 916 000 13 13", "102"]
            assert found["phones_display"] == ["8 (916) 000-13-13", "102"]
        await admin.close()


async def test_a_date_range_whose_start_is_after_its_end_is_refused_with_a_message_that_says_so() -> None:
    async with panel_env([TRANSFER]) as env, httpx.AsyncClient(base_url=env.url) as http:
        await http.post("/api/login", json={"name": "admin", "password": env.users["admin"][0]})
        for path in ("/api/calls", "/api/missed"):
            response = await http.get(path, params={"since": "2026-11-25", "until": "2026-11-24"})
            assert response.status_code == 400, path
            error = response.json()["error"]
            assert error["code"] == "bad_request"
            assert "since (2026-11-25) is after until (2026-11-24)" in error["message"]
            same_day = await http.get(path, params={"since": "2026-11-24", "until": "2026-11-24T23:59"})
            assert same_day.status_code == 200, path


async def test_a_date_in_a_listing_s_period_is_the_site_s_day_not_the_server_s() -> None:
    """``since=2026-11-24`` means that day in ``[pbx] timezone`` (the panel's dates are the site's), whatever zone the
    server runs in: a call at 00:30 on the site's day is in that day's journal and contact register."""
    # The replay redates the call to now: a zone where its day differs from the UTC day (far east or far west).
    now = datetime.now(UTC)
    zone = "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"
    async with panel_env([TRANSFER], speed=0, sections={"pbx": f'timezone = "{zone}"'}) as env:
        admin = await WsClient.connect(env, "admin")
        env.start_calls()
        await admin.wait_for("call.ended", timeout=30, caller="79160001313")
        await admin.close()
        await env.store.flush()
        [call] = await env.store.list_calls()
        site_day = datetime.fromtimestamp(call.started_at, ZoneInfo(zone)).date()
        utc_day = datetime.fromtimestamp(call.started_at, UTC).date()
        assert site_day != utc_day  # so the test can tell one from the other
        async with httpx.AsyncClient(base_url=env.url) as http:
            await http.post("/api/login", json={"name": "admin", "password": env.users["admin"][0]})
            for day, found in ((site_day, 1), (utc_day, 0)):
                period = {"since": day.isoformat(), "until": f"{day.isoformat()}T23:59:59"}
                calls = (await http.get("/api/calls", params=period)).json()["calls"]
                assert len(calls) == found, (day, calls)
                contacts = await http.get("/api/contacts/register", params=period)
                assert contacts.status_code == 200, contacts.text
