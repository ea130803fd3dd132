"""Recording links handed to CRMs (issue 16): signed, expiring, served without a login, refused when altered.

The tokens themselves are checked as the pure functions they are (the signature, the expiry, the bounds); what a CRM
gets is checked over real HTTP against the whole system (replay PBX → daemon → panel, the real SQLite store): the
link of a journal call plays its real recording (scenario 01's file, read where it is through ``[recording] dir``),
with HTTP Range, to a client that never logged in; an altered link is 403, an expired one 410, a call or a recording
that is not there 404, and no answer names a path.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.panel_env import PanelEnv, panel_env
from tests.traces import TRACES
from tests.ui_bridge.qa_calls import recorded_call, save_call
from ui_bridge.signed_links import LINK_PATH, MAX_TOKEN, BadLink, ExpiredLink, NoRecordingLink, SignedLinks

TRACE = "01-direct-answered"
FOLDER = TRACES / TRACE / "recordings"
FILE = "20261124-001402-79161234567-1795479242.0.wav"
LINKEDID = "1795479242.0"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def links(clock: Clock, *, public_url: str | None = "https://cti.example.ru/", secret: bytes = b"k" * 32
          ) -> SignedLinks:
    return SignedLinks(secret, public_url, 72.0, clock)


def flip(text: str, at: int) -> str:
    """``text`` with the character at ``at`` replaced by another of the token's alphabet."""
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


# -- the tokens ---------------------------------------------------------------------------------------------------


def test_a_link_names_the_recording_until_it_expires_and_is_url_safe_and_bounded() -> None:
    clock = Clock(1_800_000_000.0)
    signer = links(clock)
    url = signer.url("main", LINKEDID, 1)
    assert url.startswith("https://cti.example.ru/crm/recording/")
    token = url.removeprefix("https://cti.example.ru" + LINK_PATH)
    assert len(token) < MAX_TOKEN and all(c.isalnum() or c in "-_." for c in token)
    assert FILE not in url and "/var/" not in url  # a name, never a file or a path
    target = signer.read(token)
    assert (target.pbx, target.linkedid, target.index) == ("main", LINKEDID, 1)
    assert target.expires == clock.now + 72 * 3600
    clock.now += 72 * 3600 - 1
    assert signer.read(token).index == 1
    clock.now += 1
    with pytest.raises(ExpiredLink):
        signer.read(token)


def test_an_altered_cut_or_foreign_link_is_refused_before_anything_in_it_is_believed() -> None:
    clock = Clock(1_800_000_000.0)
    signer = links(clock)
    token = signer.token("main", LINKEDID, 0)
    body, _, signature = token.partition(".")
    other = links(clock, secret=b"x" * 32).token("main", LINKEDID, 0)  # another daemon's key
    # The same body with a later expiry: only the key's holder could sign it.
    later = SignedLinks(b"x" * 32, None, 72.0, clock).token("main", LINKEDID, 0, expires=clock.now + 10**9)
    for bad in (flip(token, 3), flip(token, len(token) - 2), body, f"{body}.", f".{signature}", other,
                later.partition(".")[0] + "." + signature, token + "A", "x" * (MAX_TOKEN + 1), "",
                "../../etc/passwd", token.replace(".", "..")):
        with pytest.raises(BadLink):
            signer.read(bad)
    # An expired token whose body was altered is refused as altered (403), not as expired (410).
    expired = signer.token("main", LINKEDID, 0, expires=clock.now - 1)
    with pytest.raises(BadLink):
        signer.read(flip(expired, 2))


def test_without_public_url_or_a_key_no_link_is_made() -> None:
    with pytest.raises(NoRecordingLink, match="public_url"):
        links(Clock(0), public_url=None).url("main", LINKEDID, 0)
    unloaded = SignedLinks(None, "https://cti.example.ru", 72.0, Clock(0))
    with pytest.raises(NoRecordingLink, match="key"):
        unloaded.url("main", LINKEDID, 0)


# -- over HTTP, the whole system ------------------------------------------------------------------------------------


def sections(folder: Path = FOLDER) -> dict[str, str]:
    return {"recording": f'dir = "{folder}"', "crm": 'public_url = "https://cti.example.ru"'}


async def link_env_call(env: PanelEnv, *, recordings: tuple[str, ...] = (FILE,)) -> SignedLinks:
    """The journal holds scenario 01's call with ``recordings``; the panel's links, their key loaded."""
    await save_call(env.store, recorded_call(LINKEDID, recordings=recordings, answered_by="103"))
    panel = env.running.daemon.panel
    assert panel is not None
    await panel.links.load(env.store)
    return panel.links


def path_of(url: str) -> str:
    return url.removeprefix("https://cti.example.ru")


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert str(FOLDER) not in response.text and "/" not in message, message  # never a path
    return message


async def test_a_crm_without_a_login_plays_the_recording_of_a_valid_link_with_range() -> None:
    audio = (FOLDER / FILE).read_bytes()
    async with panel_env([TRACE], sections=sections()) as env, httpx.AsyncClient(base_url=env.url) as crm:
        signer = await link_env_call(env)
        url = path_of(signer.url("main", LINKEDID, 0))
        whole = await crm.get(url)
        assert whole.status_code == 200, whole.text
        assert whole.content == audio
        assert whole.headers["content-type"] == "audio/wav"
        assert whole.headers["cache-control"] == "no-store"
        assert "set-cookie" not in whole.headers
        part = await crm.get(url, headers={"Range": "bytes=44-1043"})
        assert part.status_code == 206 and part.content == audio[44:1044]
        head = await crm.head(url)
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(audio)


async def test_altered_expired_and_missing_links_are_refused_for_what_they_are() -> None:
    async with panel_env([TRACE], sections=sections()) as env, httpx.AsyncClient(base_url=env.url) as crm:
        signer = await link_env_call(env, recordings=(FILE, "20261124-gone.wav"))
        token = signer.token("main", LINKEDID, 0)
        error(await crm.get(LINK_PATH + flip(token, 5)), 403, "forbidden")
        error(await crm.get(LINK_PATH + flip(token, len(token) - 1)), 403, "forbidden")
        error(await crm.get(LINK_PATH + "x" * 2000), 403, "forbidden")
        error(await crm.get(LINK_PATH + token.partition(".")[0]), 403, "forbidden")
        expired = signer.token("main", LINKEDID, 0, expires=time.time() - 1)
        assert "expired" in error(await crm.get(LINK_PATH + expired), 410, "expired")
        error(await crm.get(path_of(signer.url("main", "1795479242.999", 0))), 404, "not_found")  # no such call
        error(await crm.get(path_of(signer.url("spb", LINKEDID, 0))), 404, "not_found")  # no such PBX
        error(await crm.get(path_of(signer.url("main", LINKEDID, 2))), 404, "not_found")  # no such recording
        error(await crm.get(path_of(signer.url("main", LINKEDID, 1))), 404, "not_found")  # its file is gone
        # A session is no substitute for the signature, and the QA page's audio still needs one.
        assert (await crm.get(f"/api/calls/main/{LINKEDID}/audio/0")).status_code == 401


async def test_the_key_is_kept_in_the_store_so_links_survive_a_restart_and_work_on_every_node() -> None:
    async with panel_env([TRACE], sections=sections()) as env, httpx.AsyncClient(base_url=env.url) as crm:
        signer = await link_env_call(env)
        # Another node (or this daemon after a restart) reads the same key from the same store.
        elsewhere = SignedLinks(None, "https://cti.example.ru", 72.0, time.time)
        await elsewhere.load(env.store)
        assert elsewhere.secret == signer.secret and elsewhere.secret is not None and len(elsewhere.secret) == 32
        response = await crm.get(path_of(elsewhere.url("main", LINKEDID, 0)))
        assert response.status_code == 200 and response.content == (FOLDER / FILE).read_bytes()
