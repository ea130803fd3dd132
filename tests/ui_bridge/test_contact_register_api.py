"""The contact register over real HTTP: the listing's filters and pages, who reads what, the CSV export in both
encodings with a hostile cell, and the DMS's integration API (a bearer token of the `integration` role) setting
*booking* and *visit* idempotently, with every bad request refused for what it is.

The whole system runs (replay PBX → daemon → panel, tests/panel_env.py); the contacts are saved through the store
from real drafts (the example script followed by the pure runner, tests/store/contact_drafts.py).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import httpx

from store.repository import User
from tests.cli_runner import cti_async
from tests.panel_env import PanelEnv, panel_env
from tests.store.contact_drafts import follow
from tests.ui_bridge.wsclient import session_cookie
from ui_bridge.auth import new_token, token_hash

TRACE = "13-blind-transfer-redirect"  # never started: the register is filled through the store
DAY = 86400.0
HOSTILE = "=cmd|' /C calc'!A0"


@asynccontextmanager
async def register_env() -> AsyncIterator[tuple[PanelEnv, dict[str, int], str]]:
    """The panel with five contacts three days ago, a minute apart, and an integration user's token."""
    async with panel_env([TRACE]) as env:
        t0 = time.time() - 3 * DAY
        made = {}
        for i, (route, options) in enumerate([
            ("private_new", {"agent": "101"}),
            ("parts", {"agent": "102"}),
            ("other", {"agent": "101", "answers": {"registered": {"note": HOSTILE}}}),
            ("corporate_new", {"agent": "102"}),
            ("directions", {"agent": "101", "channel": "visit", "linkedid": None}),
        ]):
            draft = follow(route, at=t0 + i * 60, **options)  # type: ignore[arg-type]
            made[route] = (await env.store.save_contact(draft, repeat_days=180)).id
        await env.store.add_user(User(name="alfa-auto", role="integration"))
        token = new_token()
        await env.store.add_token("alfa-auto", token_hash(token), "1C:Alfa-Auto")
        yield env, made, token


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["contacts"]]


async def test_the_listing_filters_pages_and_shows_agents_their_own_only() -> None:
    async with register_env() as (env, made, _), httpx.AsyncClient(base_url=env.url) as http:
        http.cookies.set("cti_session", await session_cookie(env, "admin"))
        newest_first = list(made.values())[::-1]
        assert ids(await http.get("/api/contacts/register")) == newest_first
        assert ids(await http.get("/api/contacts/register", params={"stage": "request"})) == [
            made["corporate_new"], made["parts"], made["private_new"]]
        assert ids(await http.get("/api/contacts/register", params={"reason": "parts"})) == [made["parts"]]
        assert ids(await http.get("/api/contacts/register", params={"channel": "visit"})) == [made["directions"]]
        assert ids(await http.get("/api/contacts/register", params={"client_type": "corporate"})) == [
            made["corporate_new"]]
        assert ids(await http.get("/api/contacts/register", params={"agent": "102"})) == [
            made["corporate_new"], made["parts"]]
        assert ids(await http.get("/api/contacts/register", params={"employee": "elena"})) == [made["private_new"]]
        async def at(route: str) -> str:
            shown = (await http.get(f"/api/contacts/register/{made[route]}")).json()["contact"]["at"]
            return datetime.fromisoformat(shown).replace(microsecond=0).isoformat()

        window = {"since": await at("parts"), "until": await at("corporate_new"), "pbx": "main"}
        assert ids(await http.get("/api/contacts/register", params=window)) == [made["other"], made["parts"]]
        # Pages by cursor: every contact once, newest first.
        seen: list[int] = []
        params: dict[str, str] = {"limit": "2"}
        while True:
            page = await http.get("/api/contacts/register", params=params)
            seen += ids(page)
            if page.json()["next"] is None:
                break
            params["after"] = page.json()["next"]
        assert seen == newest_first
        one = (await http.get(f"/api/contacts/register/{made['private_new']}")).json()["contact"]
        assert (one["reason"], one["client_kind"], one["client_new"], one["employee"], one["request_by"]) == (
            "repair_private", "private", True, "elena", "script")
        assert one["route"][0] == "reason" and one["answers"]["private_client"]["new"] is True
        for bad, says in [({"stage": "paid"}, "stage is one of request, booking, visit"),
                          ({"channel": "fax"}, "channel is one of"), ({"client_type": "vip"}, "client_type is one"),
                          ({"since": "yesterday"}, "since:"), ({"since": "2026-03-10", "until": "2026-03-01"},
                                                               "is after until"),
                          ({"after": "bm90LWEtY3Vyc29y"}, "after:"), ({"format": "xml"}, "format is json or csv"),
                          ({"reason": "x" * 65}, "reason: at most"), ({"pbx": "nowhere"}, "no PBX")]:
            response = await http.get("/api/contacts/register", params=bad)
            assert response.status_code == 400 and says in response.json()["error"]["message"], (bad, response.text)
        assert (await http.get("/api/contacts/register/999999")).status_code == 404
        assert (await http.get("/api/contacts/register/" + "9" * 30)).status_code == 404

    async with register_env() as (env, made, _), httpx.AsyncClient(base_url=env.url) as http:
        http.cookies.set("cti_session", await session_cookie(env, "anna"))  # agent 101
        mine = [made["directions"], made["other"], made["private_new"]]
        assert ids(await http.get("/api/contacts/register")) == mine
        assert ids(await http.get("/api/contacts/register", params={"agent": "102"})) == mine  # asked: still own
        assert (await http.get(f"/api/contacts/register/{made['parts']}")).status_code == 403
        assert (await http.get(f"/api/contacts/register/{made['other']}")).status_code == 200
        http.cookies.set("cti_session", await session_cookie(env, "qa"))
        assert len(ids(await http.get("/api/contacts/register"))) == 5


def read_csv(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding)), delimiter=";"))


async def test_the_csv_export_in_utf8_and_cp1251_with_formulas_neutralised() -> None:
    async with register_env() as (env, made, _), httpx.AsyncClient(base_url=env.url) as http:
        http.cookies.set("cti_session", await session_cookie(env, "admin"))
        utf8 = await http.get("/api/contacts/register", params={"format": "csv"})
        assert utf8.status_code == 200 and utf8.headers["content-type"] == "text/csv; charset=utf-8"
        assert "attachment" in utf8.headers["content-disposition"]
        assert utf8.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
        rows = read_csv(utf8.content, "utf-8-sig")
        header, body = rows[0], rows[1:]
        assert header[:4] == ["id", "at", "channel", "reason"] and b"\r\n" in utf8.content
        by_id = {int(r[0]): dict(zip(header, r, strict=True)) for r in body}
        assert list(by_id) == list(made.values())  # oldest first, every contact
        assert by_id[made["other"]]["note"] == "'" + HOSTILE  # a spreadsheet shows it, never runs it
        assert by_id[made["corporate_new"]]["client_name"] == "ООО «Ромашка»"
        assert by_id[made["private_new"]]["request_by"] == "script" and by_id[made["private_new"]]["client_new"] == "1"
        assert by_id[made["private_new"]]["route"].startswith("reason > private_client")

        cp = await http.get("/api/contacts/register", params={"format": "csv", "encoding": "cp1251",
                                                              "reason": "repair_corporate"})
        assert cp.status_code == 200 and cp.headers["content-type"] == "text/csv; charset=windows-1251"
        rows = read_csv(cp.content, "cp1251")
        assert len(rows) == 2 and rows[1][rows[0].index("client_name")] == "ООО «Ромашка»"
        assert "Ромашка".encode("cp1251") in cp.content
        # A filter the CSV cannot honour is refused like the listing's.
        bad = await http.get("/api/contacts/register", params={"format": "csv", "encoding": "utf-16"})
        assert bad.status_code == 400 and "utf-8 or cp1251" in bad.json()["error"]["message"]
        # An agent's export is their own contacts only.
        http.cookies.set("cti_session", await session_cookie(env, "oleg"))  # agent 102
        theirs = read_csv((await http.get("/api/contacts/register", params={"format": "csv"})).content, "utf-8-sig")
        assert [int(r[0]) for r in theirs[1:]] == [made["parts"], made["corporate_new"]]


async def test_the_dms_sets_booking_and_visit_with_its_token_idempotently() -> None:
    async with register_env() as (env, made, token), httpx.AsyncClient(base_url=env.url) as http:
        dms = {"Authorization": f"Bearer {token}"}
        url = f"/api/contacts/register/{made['private_new']}/stages"
        booked_at = datetime.fromtimestamp(time.time() - 3600).astimezone().replace(microsecond=0).isoformat()
        booking = {"stage": "booking", "at": booked_at, "external_id": "ЗН-000123"}

        wrong = await http.post(url, json=booking, headers={"Authorization": "Bearer " + "0" * 43})
        assert wrong.status_code == 401
        agent_token = new_token()
        await env.store.add_token("anna", token_hash(agent_token), "softphone")
        assert (await http.post(url, json=booking, headers={"Authorization": f"Bearer {agent_token}"})
                ).status_code == 403

        first = await http.post(url, json=booking, headers=dms)
        assert first.status_code == 200 and first.json()["changed"] is True, first.text
        contact = first.json()["contact"]
        assert (contact["booking_by"], contact["booking_external_id"]) == ("alfa-auto", "ЗН-000123")
        assert datetime.fromisoformat(contact["booking_at"]) == datetime.fromisoformat(booked_at)
        again = await http.post(url, json=booking, headers=dms)  # the DMS retries: nothing changes
        assert again.status_code == 200 and again.json() == {"contact": contact, "changed": False}
        other = await http.post(url, json={**booking, "external_id": "ЗН-000999"}, headers=dms)
        assert other.status_code == 409 and "ЗН-000123" in other.json()["error"]["message"]
        # A visit without a booking is a walk-in: allowed; `at` defaults to now.
        walk_in = await http.post(f"/api/contacts/register/{made['other']}/stages",
                                  json={"stage": "visit", "external_id": "ЗН-7"}, headers=dms)
        assert walk_in.status_code == 200 and walk_in.json()["contact"]["booking_at"] is None
        assert walk_in.json()["contact"]["visit_at"] is not None

        for body, says in [
            ({"stage": "paid", "external_id": "1"}, "stage"),
            ({"stage": "request", "external_id": "1"}, "booking or visit"),
            ({"stage": "visit"}, "external_id: required"),
            ({"stage": "visit", "external_id": "1", "at": "вчера"}, "is not an ISO 8601 time"),
            ({"stage": "visit", "external_id": "1", "at": "2001-01-01T00:00:00+00:00"}, "is before the contact"),
            ({"stage": "visit", "external_id": "1", "at": "2099-01-01T00:00:00+00:00"}, "is in the future"),
            ({"stage": "visit", "external_id": "a\nb"}, "external_id"),
            ({"stage": "visit", "external_id": "1", "extra": True}, "extra"),
        ]:
            response = await http.post(f"/api/contacts/register/{made['parts']}/stages", json=body, headers=dms)
            assert response.status_code == 400 and says in response.json()["error"]["message"], (body, response.text)
        huge = await http.post(url, content=b'{"stage": "visit", "external_id": "' + b"x" * 200_000 + b'"}',
                               headers={**dms, "Content-Type": "application/json"})
        assert huge.status_code == 413
        assert (await http.post("/api/contacts/register/424242/stages", json=booking, headers=dms)).status_code == 404
        unchanged = await env.store.get_registered_contact(made["parts"])
        assert unchanged.stages[0].stage == "request" and len(unchanged.stages) == 1

        # The token opens the integration routes only.
        for method, path in [("GET", "/api/contacts/register"), ("GET", "/api/me"), ("GET", "/api/calls"),
                             ("GET", "/api/contacts")]:
            response = await http.request(method, path, headers=dms)
            assert response.status_code == 403, (path, response.text)
        # An admin sets a stage from the panel (its own origin), by name.
        http.cookies.set("cti_session", await session_cookie(env, "admin"))
        by_admin = await http.post(f"/api/contacts/register/{made['parts']}/stages", json={"stage": "visit"},
                                   headers={"Origin": env.url})
        assert by_admin.status_code == 200 and by_admin.json()["contact"]["visit_by"] == "admin"


async def test_cti_users_add_integration_prints_the_token_the_dms_then_uses() -> None:
    async with register_env() as (env, made, _), httpx.AsyncClient(base_url=env.url) as http:
        ran = await cti_async("users", "add", "alfa", "--role", "integration", "--config", str(env.config))
        token = ran.stdout.strip()
        assert len(token) >= 40 and "shown once" in ran.stderr  # no password asked: none was given on stdin
        user = await env.store.get_user("alfa")
        assert user is not None and user.role == "integration" and user.password_hash is None
        response = await http.post(f"/api/contacts/register/{made['parts']}/stages",
                                   json={"stage": "booking", "external_id": "ЗН-42"},
                                   headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200 and response.json()["contact"]["booking_by"] == "alfa"
        more = await cti_async("users", "token", "alfa", "--config", str(env.config))
        again = await http.post(f"/api/contacts/register/{made['parts']}/stages",
                                json={"stage": "booking", "external_id": "ЗН-42"},
                                headers={"Authorization": f"Bearer {more.stdout.strip()}"})
        assert again.status_code == 200 and again.json()["changed"] is False
        refused = await cti_async("users", "add", "alfa2", "--role", "integration", "--extension", "101",
                                  "--config", str(env.config), check=False)
        assert refused.returncode == 2 and "no extension" in refused.stderr
