"""Loose ends of the security work (issue 9), each over the real system: a CRM's answer is untrusted input, the
VIN and year rules are one, config strings that reach AMI are one line of text, the daemon's log cannot be
forged or act on a terminal, and `cti users` and a WebSocket `subscribe` hold like everything else.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from asterisk.replay import ReplayPbx
from tests.daemon.conftest import CTI, UNIT, cti, write_config
from tests.panel_env import panel_env
from tests.security.edge_helpers import TRANSFER, assert_no_tracebacks
from tests.security.test_malformed_input import crm_answering
from tests.security.test_sessions import closed_by_server, send_quietly
from tests.traces import REPO, hostile_copy
from tests.ui_bridge.wsclient import WsClient

# -- 1. a CRM's answer is cleaned at the edge, and the pop keeps it --------------------------------------------


def crm_config(url: str) -> str:
    return f'crm_url = "{url}"\ncrm_timeout = 5.0'


async def test_a_crm_answer_of_wrong_types_and_absurd_lengths_still_gives_its_contact_in_the_pop(
        caplog: pytest.LogCaptureFixture) -> None:
    """A number as the e-mail used to fail the whole card (a traceback in the log, the pop without the CRM's
    contact); a phone given as a string became one phone per digit; strings of any length went to every panel."""
    answer = {"contacts": [
        7, "junk", {"name": 5}, {"name": "  \u0007 "},  # no usable contact in these
        {"name": "Зайцева Марина " * 20, "kind": "vip", "phones": "79160001313", "email": 5, "notes": "n" * 100_000,
         "vehicles": [{"make": ["Kia"], "model": "Rio\u0000", "year": "2019", "plate": "М456ОК199", "vin": "1"},
                      "junk", {"year": True, "vin": "xw8zzz61zbg123456"}, {"year": 1200, "plate": 7}]},
    ]}
    body = json.dumps(answer, ensure_ascii=False).encode()
    async with (crm_answering(body) as url,
                panel_env([TRANSFER], speed=4, directory_extra=crm_config(url)) as env):
        admin = await WsClient.connect(env, "admin")
        env.start_calls()
        pop = await admin.wait_for("call.ringing", timeout=30)
    card = pop["card"]
    assert card["sources"] == ["local", "crm"], card
    [crm] = [c for c in card["contacts"] if c["source"] == "crm"]
    assert crm["name"] == ("Зайцева Марина " * 20)[:200].rstrip() and card["name"] == crm["name"]
    assert crm["kind"] == "private" and crm["phones"] == ["79160001313"]
    assert crm["email"] is None and crm["notes"] == "n" * 2000
    assert crm["vehicles"] == [
        {"make": None, "model": "Rio", "year": 2019, "plate": "М 456 ОК 199", "vin": None},
        {"make": None, "model": None, "year": None, "plate": None, "vin": "XW8ZZZ61ZBG123456"},
    ]  # the last vehicle had nothing usable in it: not shown as an empty row
    assert_no_tracebacks(caplog)


async def test_a_crm_answer_too_big_to_read_leaves_the_pop_with_the_local_card(
        caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({"contacts": [{"name": "Зайцева", "notes": "n" * 300_000}]}).encode()
    async with (crm_answering(body) as url,
                panel_env([TRANSFER], speed=4, directory_extra=crm_config(url)) as env):
        admin = await WsClient.connect(env, "admin")
        env.start_calls()
        pop = await admin.wait_for("call.ringing", timeout=30)
    assert pop["card"]["sources"] == ["local"] and pop["card"]["contacts"] == []
    assert any("CRM lookup" in r.getMessage() and "bytes" in r.getMessage() for r in caplog.records)
    assert_no_tracebacks(caplog)


# -- 2. one rule for a model year (and a VIN): the import no longer trips over digits int() refuses ----------


def test_a_contacts_file_with_a_year_that_only_looks_numeric_is_a_row_problem(tmp_path: Path) -> None:
    """``"²".isdigit()`` is true and ``int("²")`` raises: the import used to end in a traceback."""
    config = str(write_config(tmp_path, 5038))
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("name;phone;year;vin\r\n"
                        "Зайцева Марина;79160001313;²;\r\n"
                        f"Петров Олег;79160002222;{'1' * 5000};\r\n"
                        "Соколов Дмитрий;79160003333;2019;xw8zzz61zbg123456\r\n", encoding="utf-8")
    proc = cti("contacts", "import", str(csv_file), "--dry-run", "--config", config, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr
    assert "line 2: year: '²' is not a year" in proc.stderr
    assert "line 3: year: '1111111111" in proc.stderr and "line 4" not in proc.stderr
    assert len(proc.stderr) < 2000  # the problem quotes the value, not all 5,000 digits of it


# -- 3. config strings that reach AMI: one line of text, refused at load time ----------------------------------

BAD_CONFIGS = {
    "ami.username": '[ami]\nusername = "cti\\r\\nAction: Originate"\nsecret = "x"\n',
    "ami.secret": '[ami]\nsecret = "x\\nEvents: on"\n',
    "ami.events": '[ami]\nsecret = "x"\nevents = "call,agent\\u0000"\n',
    "pbx.agent_technology": '[ami]\nsecret = "x"\n[pbx]\nagent_technology = "PJSIP\\u001b[2J"\n',
    "pbx.originate_context": '[ami]\nsecret = "x"\n[pbx]\noriginate_context = "from-internal\\r"\n',
    "pbx.transfer_context": '[ami]\nsecret = "x"\n[pbx]\ntransfer_context = "transfer\\u0085"\n',
    "pbx.external_transfer_context": '[ami]\nsecret = "x"\n[pbx]\nexternal_transfer_context = "out\\u2028bound"\n',
    "pbx.agents.101": '[ami]\nsecret = "x"\n[pbx.agents]\n"101" = "Анна\\nAction: Hangup"\n',
    "pbx.queues.1": '[ami]\nsecret = "x"\n[pbx]\nqueues = ["support", "sales\\t"]\n',
}


@pytest.mark.parametrize("field", list(BAD_CONFIGS))
def test_a_control_character_in_a_config_string_that_reaches_ami_is_a_clear_config_error(
        tmp_path: Path, field: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BAD_CONFIGS[field], encoding="utf-8")
    proc = cti("check-config", "--config", str(path), check=False)
    assert proc.returncode == 2, (field, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == f"cti: {path}: invalid configuration" and len(lines) == 2, proc.stderr
    assert lines[1].strip().startswith(f"{field}: ") and "control character" in lines[1], proc.stderr
    assert "Action:" not in proc.stderr and "Events:" not in proc.stderr  # the value is not repeated


def test_a_secret_from_the_environment_with_a_line_break_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[ami]\nsecret_env = "CTI_TEST_AMI_SECRET"\n', encoding="utf-8")
    hostile = {"CTI_TEST_AMI_SECRET": "x\r\nAction: Originate"}
    for command in ("check-config", "run"):
        proc = cti(command, "--config", str(path), env=hostile, check=False)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "Traceback" not in proc.stderr and "Action:" not in proc.stderr
        assert "CTI_TEST_AMI_SECRET" in proc.stderr and "control character" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    fine = cti("check-config", "--config", str(path), env={"CTI_TEST_AMI_SECRET": "x y-z"})
    assert "ok" in fine.stdout


# -- 4. the daemon's log: outside strings cannot forge a line or act on the terminal ------------------------------

#: What a log reader must never see at the start of a line: a line the daemon did not write.
FORGED = "2026-01-01 00:00:00,000 ERROR   companion.daemon: forged"
#: A caller's display name and the PBX's banner, as hostile as AMI can carry them (AMI ends a line at LF, so
#: they break lines the other ways a terminal or a log reader knows: VT, FF, and ESC sequences).
HOSTILE_NAME = f"Evil\x0b{FORGED}\x1b[31m"
HOSTILE_BANNER = f"Asterisk Call Manager/11.0.0\x0c{FORGED}\x1b[32m"
#: A request path, percent-decoded by the server: a real newline in front of the forged line.
HOSTILE_PATH = "/api/calls/%0A" + FORGED.replace(" ", "%20") + "%1B%5B31m/contact"


def hostile_trace(tmp: Path) -> Path:
    """Trace 01 with the caller's name and the PBX's banner replaced by hostile ones."""
    return hostile_copy(tmp, HOSTILE_NAME, HOSTILE_BANNER)


class LogWatch:
    """``cti run``'s stderr, read as it comes, so the test can wait for a line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.text = ""
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.text += chunk.decode("utf-8", "replace")

    async def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        async with asyncio.timeout(timeout * UNIT):
            while (found := re.search(pattern, self.text)) is None:
                await asyncio.sleep(0.05)
        return found

    async def stop(self) -> str:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.proc.wait(), 20 * UNIT)
        await self._task
        return self.text


def _calls_in(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    except sqlite3.Error:
        return 0


async def _half_sent_post(port: int, cookie: str) -> None:
    """A POST to a path with a newline and an ESC in it, whose body never comes: the server logs the path."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"POST {HOSTILE_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: cti_session={cookie}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"contact").encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_outside_strings_in_the_daemons_log_cannot_forge_a_line_or_reach_the_terminal_raw(
        tmp_path: Path) -> None:
    """A caller's name reaches no log line as text (only the store's debug lines, as a Python repr); the PBX's
    banner does (at info), and so does a request's path (at debug): with a newline, a VT, an FF or an ESC they
    used to forge a line of the log or recolour the terminal showing it."""
    password = "admin-password-1"
    async with ReplayPbx([hostile_trace(tmp_path)], speed=0) as pbx:
        config = write_config(tmp_path, pbx.address[1])
        cti("users", "add", "admin", "--role", "admin", "--password-stdin", "--config", str(config),
            input=password + "\n")
        proc = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), "--log-level", "debug",
                                                    cwd=REPO, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        log = LogWatch(proc)
        try:
            port = int((await log.wait_for(r"panel: http://127\.0\.0\.1:(\d+)")).group(1))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                answer = await http.post("/api/login", json={"name": "admin", "password": password})
                assert answer.status_code == 200, answer.text
                cookie = answer.cookies["cti_session"]
            await _half_sent_post(port, cookie)
            await log.wait_for("the client left before its body was in")
            async with asyncio.timeout(30 * UNIT):  # the hostile caller's call is in the journal
                while _calls_in(tmp_path / "journal.sqlite") < 1:
                    await asyncio.sleep(0.1)
        finally:
            err = await log.stop()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    for raw in ("\x1b", "\x0b", "\x0c"):
        assert raw not in err, f"a raw {raw!r} in the log"
    forged = [line for line in err.splitlines() if line.startswith(FORGED)]
    assert not forged, forged
    # What was sent is still there for whoever reads the log, as visible escapes.
    assert f"Asterisk Call Manager/11.0.0\\x0c{FORGED}\\x1b[32m" in err
    assert f"/api/calls/\\x0a{FORGED}\\x1b[31m/contact" in err


# -- 5. `cti users` prints names as text; `subscribe` re-checks the session like every other command -----------


def test_users_add_and_list_print_hostile_extensions_and_display_names_as_text(tmp_path: Path) -> None:
    """A display name is free text, printed escaped; an extension names the phone in AMI actions, so one with a
    control character is refused (and the refusal quotes it escaped)."""
    config = str(write_config(tmp_path, 5038))
    link = "\x1b]8;;https://evil.example\x1b\\Анна\x1b]8;;\x1b\\"
    refused = cti("users", "add", "anna", "--role", "agent", "--extension", "\x1b[2J101", "--password-stdin",
                  "--config", config, input="long-enough-1\n", check=False)
    assert refused.returncode == 2 and r"\x1b[2J101" in refused.stderr
    added = cti("users", "add", "anna", "--role", "agent", "--extension", "101", "--display-name", link,
                "--password-stdin", "--config", config, input="long-enough-1\n")
    listed = cti("users", "list", "--config", config, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    for proc in (refused, added, listed):
        assert "\x1b[2J" not in proc.stdout + proc.stderr and "\x1b]8;" not in proc.stdout + proc.stderr
    assert r"\x1b]8;;https://evil.example" in listed.stdout


async def test_a_subscribe_sent_right_after_a_demotion_is_refused_and_the_socket_closes() -> None:
    """Subscribe is checked against the store like every command: a demoted admin cannot re-subscribe to every
    call in the second before the sweep closes the socket."""
    async with panel_env([TRANSFER]) as env:
        admin = await WsClient.connect(env, "admin")
        await admin.wait_for("state", scope="all")
        assert (await admin.request({"type": "subscribe", "scope": "own"}))["data"] == {"scope": "own"}
        await admin.wait_for("state", scope="own")  # while the access stands, subscribe works as before
        await env.store.update_user("admin", role="agent", extension="109")  # as `cti users` would
        await send_quietly(admin.conn, {"type": "subscribe", "scope": "all", "id": "after-demotion"})
        closed = await closed_by_server(admin)
        assert closed.rcvd is not None and closed.rcvd.code == 1008
        replies: list[dict[str, Any]] = [m for _, m in admin.received if m.get("id") == "after-demotion"]
        assert not replies, replies
        assert [s["scope"] for s in admin.of_type("state")] == ["all", "own"]  # no state of every call again
