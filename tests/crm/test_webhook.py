"""The generic webhook end to end: real traces replayed into a real daemon, a real receiver over HTTP.

* Each call's events arrive in its order, signed (the receiver checks every signature), once each: a queue call that
  rang three phones (ringing ×3, answered by 102, the two others' ring stopping, ended answered), an abandoned queue
  call, a transfer, a click-to-call (the agent is the extension that called out, never the customer's number).
* The ended event carries the outcome and, with ``[crm] public_url``, a signed link to each recording, never a path.
* A receiver that does not know our secret (401) and one that refuses an event (400) get nothing more for it: the
  requests are given up, their reason kept and shown by ``store.crm_status``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asterisk.replay import ReplayPbx
from companion.config import Settings
from store.repository import Store
from tests.crm.local_server import serving
from tests.crm.webhook_server import PATH, Answer, WebhookReceiver
from tests.daemon.conftest import RunningDaemon, settings_for, wait_until
from tests.traces import TRACES

SECRET = "webhook-secret-Ж1"


def crm_sections(url: str, secret: str = SECRET, *, crm: str = "", webhook: str = "") -> dict[str, str]:
    """``sections=`` for write_config: ``[crm]`` (quick retries) and ``[crm.webhook]`` pointed at ``url``."""
    return {"crm": "retry_first_seconds = 0.05\nretry_max_seconds = 0.2\n" + crm,
            "crm.webhook": f'url = "{url}{PATH}"\nsecret = "{secret}"\nusers = {{ "102" = "oleg" }}\n' + webhook}


def webhook_settings(tmp_path: Path, port: int, url: str, **kw: Any) -> Settings:
    return settings_for(tmp_path, port, sections=crm_sections(url, **kw))


async def replay_into_daemon(tmp_path: Path, traces: list[str], receiver: WebhookReceiver, url: str,
                             expected_events: int, **kw: Any) -> None:
    """The traces replayed into a daemon pushing to ``url`` until ``expected_events`` arrived and nothing is pending."""
    async with ReplayPbx([TRACES / name for name in traces], speed=0) as pbx:
        _, port = pbx.address
        async with RunningDaemon(webhook_settings(tmp_path, port, url, **kw)) as running:
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            await wait_until(lambda: len(receiver.events) >= expected_events, 20,
                             f"{expected_events} events arrived (got {len(receiver.events)})")
            crm = running.daemon.crm
            assert crm is not None
            await wait_until(lambda: crm.senders["webhook"].stats().in_flight == 0, 10, "nothing in flight")


async def test_each_call_arrives_in_order_signed_once(tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET)
    async with serving(receiver.app) as server:
        await replay_into_daemon(tmp_path, ["07-queue-ringall-answered", "08-queue-abandon",
                                            "13-blind-transfer-redirect", "16-click-to-call-answered"],
                                 receiver, server.url, expected_events=7 + 7 + 5 + 3)
    assert receiver.bad_signatures == 0 and receiver.repeats == 0
    calls = receiver.calls()

    queue = receiver.of_call("main:1795479360.12")
    assert [e["event"] for e in queue] == ["ringing"] * 3 + ["answered"] + ["ring_stopped"] * 2 + ["ended"]
    assert {e["agent"] for e in queue[:3]} == {"101", "102", "105"}
    assert queue[3]["agent"] == "102" and queue[3]["user"] == "oleg"
    assert {e["agent"] for e in queue[4:6]} == {"101", "105"}
    assert queue[0]["call"] == {"id": "main:1795479360.12", "pbx": "main", "linkedid": "1795479360.12",
                                "direction": "inbound", "caller": "79161234500", "called": "74951234567",
                                "customer": "79161234500", "queue": "support", "did": queue[0]["call"]["did"]}
    ended = queue[-1]["result"]
    assert ended["outcome"] == "answered" and ended["answered_by"] == "102" and ended["answered_user"] == "oleg"
    assert ended["talk_seconds"] > 10 and ended["missed_reason"] is None
    # No [crm] public_url: no link is handed out (never a path), but the recording is counted.
    assert ended["recordings"] == [{"index": 0, "url": None}]
    assert [e["seq"] for e in queue] == list(range(1, 8))

    abandoned = receiver.of_call("main:1795479383.16")
    assert [e["event"] for e in abandoned] == ["ringing"] * 3 + ["ring_stopped"] * 3 + ["ended"]
    assert abandoned[-1]["result"]["outcome"] == "missed"
    assert abandoned[-1]["result"]["missed_reason"] == "abandoned"

    transfer = receiver.of_call("main:1795479510.36")
    assert [(e["event"], e["agent"]) for e in transfer] == [
        ("ringing", "101"), ("answered", "101"), ("ringing", "104"), ("answered", "104"), ("ended", "101")]
    assert transfer[-1]["result"]["transferred_to"] == "104"

    click = receiver.of_call("main:1795479586.44")
    # Outbound: known from the moment the PBX dials the customer (dialing), before the customer answers.
    assert [(e["event"], e["agent"]) for e in click] == [("dialing", "101"), ("answered", "101"), ("ended", "101")]
    assert click[0]["call"]["direction"] == "outbound" and click[0]["call"]["customer"] == "89161234567"
    assert click[0]["call"]["caller"] == "101" and click[0]["call"]["called"] == "89161234567"
    assert "result" not in click[0] and click[0]["at"] < click[1]["at"]
    assert click[-1]["result"]["answered_by"] is None  # not the customer's number: an extension or nothing
    assert set(calls) == {"main:1795479360.12", "main:1795479383.16", "main:1795479510.36", "main:1795479586.44"}
    # Every delivery answered once: no request was sent twice.
    assert len(receiver.tries) == len(receiver.events)


async def test_recording_links_are_signed_urls_under_public_url(tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET)
    async with serving(receiver.app) as server:
        await replay_into_daemon(tmp_path, ["01-direct-answered"], receiver, server.url, expected_events=3,
                                 crm='public_url = "https://cti.example.ru/"\n')
    (ended,) = [e for e in receiver.events if e["event"] == "ended"]
    (link,) = ended["result"]["recordings"]
    assert link["url"].startswith("https://cti.example.ru/crm/recording/")
    assert ".wav" not in link["url"] and "/var/" not in link["url"]


async def store_status(store: Store) -> tuple[list[Any], list[Any]]:
    return await store.crm_status(), await store.list_crm_items(crm="webhook", state="failed")


@pytest.mark.parametrize("case", ["wrong-secret", "refused"])
async def test_a_refusal_is_given_up_and_visible(case: str, tmp_path: Path) -> None:
    receiver = WebhookReceiver("another-secret" if case == "wrong-secret" else SECRET)
    if case == "refused":
        receiver.refuse = lambda body: (Answer(400, body='{"error": "unknown queue"}')
                                        if body["event"] == "ringing" else None)
    async with serving(receiver.app) as server, ReplayPbx([TRACES / "01-direct-answered"], speed=0) as pbx:
        _, port = pbx.address
        settings = webhook_settings(tmp_path, port, server.url)
        async with RunningDaemon(settings) as running:
            crm = running.daemon.crm
            assert crm is not None
            sender = crm.senders["webhook"]
            given_up = 3 if case == "wrong-secret" else 1
            await wait_until(lambda: (sender.stats().failed, sender.stats().sent) == (given_up, 3 - given_up), 20,
                             f"{given_up} request(s) given up, the others sent")
            store = running.daemon.store
            assert store is not None
            (status,), failed = await store_status(store)
    assert status.crm == "webhook" and status.failed == given_up and status.pending == 0
    assert status.sent == 3 - given_up
    if case == "wrong-secret":
        assert receiver.bad_signatures == 3 and not receiver.events
        assert all("HTTP 401" in (item.last_error or "") for item in failed)
    else:
        assert [e["event"] for e in receiver.events] == ["answered", "ended"]  # the call's later events still go
        (item,) = failed
        assert item.payload["event"] == "ringing" and "HTTP 400" in (item.last_error or "")
        assert "unknown queue" in (item.last_error or "")
    assert all(item.attempts == 1 for item in failed)  # a refusal is not retried


def test_a_call_ended_twice_is_told_once() -> None:
    """A daemon killed after the push queued a call's end but before the journal kept it rebuilds the call at its
    restart, and the resync ends it again: the receiver hears of the end once."""
    from cti.crm.webhook import WebhookPlanner
    from tests.crm.planning import plan_all, trace_events

    events = trace_events("01-direct-answered")
    [end] = [e for e in events if e.kind == "ended"]
    planned = plan_all(WebhookPlanner(), [*events, end])
    [requests] = planned.values()
    assert [r.payload["event"] for r in requests].count("ended") == 1
