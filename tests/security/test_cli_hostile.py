"""The command line under hostile and careless input (issue 9, findings 7 and 12), run as a user runs it (in-process:
tests/cli_runner.py; the real terminal in tests/test_cli_smoke.py).

A caller chooses their display name and number, so every string from the PBX, the directory or a user is
printed as text: rich markup in it stays literal, and control characters (ESC, C1, bidi overrides) are shown
as visible escapes instead of moving the cursor, recolouring the terminal or planting a hyperlink. JSON stays
exact. Malformed input (files, times, numbers, paths) gets one clear line and exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from cti.records import CallRecord
from store import StoreSettings, open_store
from tests.cli_runner import cti
from tests.daemon.conftest import write_config
from tests.store.builders import T0, agent_miss, make_call, missed_for
from tests.traces import hostile_copy

#: Caller names as a hostile SIP display name (or a careless contact import) could make them.
MARKUP = ("[/]", "[link=https://evil.example]click[/link]", "[bold red]boss[/]", ":warning: urgent")
CONTROL = {
    "\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\": r"\x1b]8;;https://evil.example\x1b\here",
    "\x1b[2J\x1b[Hwiped": r"\x1b[2J\x1b[Hwiped",
    "\u202eevil\u202c": r"\u202eevil\u202c",
    "bell\x07\rback": r"bell\x07\x0dback",
    "c1\x9b31m": r"c1\x9b31m",
}
#: What must never reach the terminal: OSC (hyperlinks, titles), erase-screen, bidi override, bell, C1 CSI.
RAW = ("\x1b]", "\x1b[2J", "\u202e", "\x07", "\x9b", "\r")
HOSTILE_CALLER = "\x1b[2J[/]"


def journal_with_hostile_names(tmp: Path) -> Path:
    """A journal whose calls carry the hostile names; the first has a hostile number too."""
    config = write_config(tmp, 5038)
    names = [*MARKUP, *CONTROL]

    async def fill() -> None:
        async with open_store(StoreSettings(path=tmp / "journal.sqlite"), region="RU") as store:
            for i, name in enumerate(names):
                record: CallRecord = make_call(f"{1795479242 + i}.0", caller_name=name, started_at=T0 + i,
                                               caller=HOSTILE_CALLER if i == 0 else "79161234567",
                                               agents_rung_not_answered=("101",))
                store.stage_call(record, missed_for(record), (agent_miss(record, "101"),))

    asyncio.run(fill())
    return config


def assert_printed_as_text(out: str, what: str) -> None:
    for name in MARKUP:
        assert name in out, (what, name, out)
    for raw in RAW:
        assert raw not in out, (what, repr(raw), out)


def test_hostile_caller_names_are_printed_as_text_in_every_table(tmp_path: Path) -> None:
    """`[/]` used to crash `cti calls` (MarkupError); `[link=…]` planted a hyperlink in the admin's terminal."""
    config = str(journal_with_hostile_names(tmp_path))
    colour = {"FORCE_COLOR": "1", "TERM": "xterm-256color"}  # as on a real terminal: rich emits styles and links
    for command in (["calls"], ["missed"], ["missed", "--status", "all", "--all"], ["agent-misses"]):
        proc = cti(*command, "--config", config, env=colour)
        assert "Traceback" not in proc.stderr, proc.stderr
        if command != ["agent-misses"]:
            assert_printed_as_text(proc.stdout, " ".join(command))
            for visible in CONTROL.values():
                assert visible in proc.stdout, (command, visible)  # the admin sees what the caller sent
        assert r"\x1b[2J[/]" in proc.stdout and "\x1b[2J" not in proc.stdout, command

    closed = cti("missed", "close", "1", "--comment", "[/] called back [link=https://evil.example]x[/link]\x1b[2J",
                 "--config", config, env=colour)
    assert "\x1b[2J" not in closed.stdout and r"\x1b[2J[/]" in closed.stdout
    shown = cti("missed", "show", "1", "--config", config, env=colour)
    entry, history = shown.stdout.split("History")
    assert "[/]" in entry and r"\x1b[2J[/]" in entry  # the entry's name and number
    assert r"[/] called back [link=https://evil.example]x[/link]\x1b[2J" in history
    assert not [raw for raw in RAW if raw in shown.stdout]


def test_json_output_keeps_hostile_names_exact_and_escaped(tmp_path: Path) -> None:
    config = str(journal_with_hostile_names(tmp_path))
    proc = cti("calls", "--config", config, "--format", "json")
    names = [row["caller_name"] for row in json.loads(proc.stdout)]
    assert names == [*MARKUP, *CONTROL]
    for raw in ("\x1b", "\u202e", "\u202c", "\x07", "\x9b", "\r"):
        assert raw not in proc.stdout, repr(raw)  # JSON escapes them: the data is exact, the terminal safe


def test_csv_in_a_pipe_keeps_the_data_exact(tmp_path: Path) -> None:
    """A file or a program gets the data as it is; on a terminal the same command shows escapes (that needs a real
    terminal: tests/test_cli_smoke.py, ``test_listings_on_a_real_terminal``)."""
    config = str(journal_with_hostile_names(tmp_path))
    assert "\x1b[2J\x1b[Hwiped" in cti("calls", "--config", config, "--format", "csv").stdout


def test_the_demo_prints_hostile_caller_names_as_text(tmp_path: Path) -> None:
    """`cti demo` over a recorded call whose caller named themselves with markup and escapes."""
    name = "[/][link=https://evil.example]x[/link]\x1b[2J"
    trace = hostile_copy(tmp_path, name)
    proc = cti("demo", str(trace), "--once", "--speed", "0", "--http-port", "0",
               "--store", str(tmp_path / "[red]demo.sqlite"), env={"FORCE_COLOR": "1", "COLUMNS": "1000"})
    assert "ringing" in proc.stdout and r"[/][link=https://evil.example]x[/link]\x1b[2J" in proc.stdout
    assert "\x1b]8;" not in proc.stdout and "\x1b[2J" not in proc.stdout
    assert "[red]demo.sqlite" in proc.stdout  # a path is text too
    assert "MarkupError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# -- malformed input: one line, exit status 2 ------------------------------------------------------------


def refused(*args: str, expected: str) -> str:
    """Runs the command, which must refuse with exit status 2, ``expected`` in one line and no traceback."""
    proc = cti(*args, check=False)
    assert proc.returncode == 2, (args, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr.replace("Error: Invalid value", ""), (
        args, proc.stderr)
    line = next((line for line in proc.stderr.splitlines() if expected in line), None)
    assert line is not None, (args, expected, proc.stderr)
    return line


def test_a_contacts_file_in_an_unreadable_encoding_is_one_clear_line(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    text = "name;phone\nИванов Пётр;89160000001\nПетров Олег;89160000002\n"
    undefined = tmp_path / "x98.csv"  # 0x98 is neither UTF-8 (a lone continuation byte) nor cp1251 (undefined)
    undefined.write_bytes(text.encode("cp1251") + b"\x98\xc0;89160000003\n")
    line = refused("contacts", "import", str(undefined), "--config", config,
                   expected="neither UTF-8 nor Windows-1251")
    assert "line 4" in line and "0x98" in line
    for bom in ("utf-16", "utf-16-le", "utf-16-be"):  # with a byte-order mark, and without one
        utf16 = tmp_path / f"{bom}.csv"
        utf16.write_bytes(text.encode(bom))
        refused("contacts", "import", str(utf16), "--config", config,
                expected="UTF-16: save as UTF-8 or Windows-1251")


def test_an_unbalanced_quote_is_reported_where_it_opened_not_swallowed(tmp_path: Path) -> None:
    """An unclosed quote used to make the rest of the file one name, imported without a word."""
    config = str(write_config(tmp_path, 5038))
    short = tmp_path / "quote.csv"
    short.write_text('name;phone\nИванов Пётр;89160000001\n"ООО Ромашка;84991112233\nСидорова Анна;9035550027\n',
                     encoding="utf-8")
    for args in (("--dry-run",), ()):
        line = refused("contacts", "import", str(short), *args, "--config", config, expected="quote")
        assert "line 3" in line and "never closed" in line
    long = tmp_path / "long.csv"  # the unclosed value outgrows the csv module's field limit before the end
    long.write_text('name;phone\n"Иванов;1\n' + "Петров Олег;89160000002\n" * 20_000, encoding="utf-8")
    line = refused("contacts", "import", str(long), "--config", config, expected="line 2")
    assert "quote" in line
    assert cti("contacts", "export", "--config", config).stdout.count("\n") == 1  # nothing imported


def test_absurd_times_and_limits_are_refused(tmp_path: Path) -> None:
    config = str(journal_with_hostile_names(tmp_path))
    for command in ("calls", "missed", "agent-misses"):
        for option, value in (("--since", "99999999d"), ("--until", "99999999999999999999999w"),
                              ("--since", "0001-01-01"), ("--until", "1969-12-31 23:00")):
            refused(command, "--config", config, option, value, expected=value)
        refused(command, "--config", config, "--since", "2026-11-24", "--until", "2026-11-23",
                expected="--since 2026-11-24 is after --until 2026-11-23")
    for limit in ("-1", "0", "99999999999999999999"):
        refused("calls", "--config", config, "--limit", limit, expected="--limit")
    assert len(json.loads(cti("calls", "--config", config, "--limit", "2", "--format", "json").stdout)) == 2
    for command in ("show", "close", "reopen"):
        extra = () if command == "show" else ("--comment", "x")
        for entry in ("99999999999999999999", "0"):
            refused("missed", command, entry, *extra, "--config", config, expected="ID")


def test_daemon_and_check_config_report_missing_files(tmp_path: Path) -> None:
    """A missing store folder used to be a StoreError traceback; check-config said ok with missing files."""
    config = write_config(tmp_path, 5038, http_extra=f'tls_cert = "{tmp_path / "no.crt"}"\ntls_key = "panel.key"')
    text = config.read_text(encoding="utf-8").replace('path = "journal.sqlite"', 'path = "no-such-dir/j.sqlite"')
    config.write_text(text, encoding="utf-8")
    proc = cti("check-config", "--config", str(config), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "ok" not in proc.stdout, proc
    for expected in (f"store.path: the folder {tmp_path / 'no-such-dir'} does not exist",
                     f"http.tls_cert: {tmp_path / 'no.crt'}: no such file",
                     f"http.tls_key: {tmp_path / 'panel.key'}: no such file"):  # relative to the config file
        assert expected in proc.stderr, (expected, proc.stderr)
    run = cti("run", "--config", str(config), check=False)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "no-such-dir" in run.stderr, run.stderr
    (tmp_path / "no-such-dir").mkdir()
    (tmp_path / "no.crt").write_text("not a certificate", encoding="utf-8")
    (tmp_path / "panel.key").write_text("not a key", encoding="utf-8")
    run = cti("run", "--config", str(config), check=False)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "TLS" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_store_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    (tmp_path / "journal.sqlite").write_text("these are not the calls you are looking for\n" * 100)
    for command in (["calls"], ["missed"], ["agent-misses"], ["missed", "show", "1"], ["contacts", "export"]):
        proc = cti(*command, "--config", config, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, (command, proc.stderr)
        assert "journal.sqlite" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_other_options_and_paths_are_checked_before_use(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    missing = tmp_path / "no-such-dir" / "out.csv"
    refused("contacts", "export", "--config", config, "-o", str(missing), expected="no-such-dir")
    refused("contacts", "export", "--config", config, "-o", str(tmp_path), expected=str(tmp_path))
    assert not list(tmp_path.glob("*.partial")) and not tmp_path.with_name(tmp_path.name + ".partial").exists()
    refused("contacts", "export", "--config", config, "--delimiter", ";;", expected="--delimiter")
    good = tmp_path / "k.csv"
    good.write_text("name;phone\nИванов;89160000001\n", encoding="utf-8")
    refused("contacts", "import", str(good), "--config", config, "--delimiter", "ab", expected="--delimiter")
    refused("contacts", "import", str(good), "--config", config, "--encoding", "klingon", expected="klingon")
    refused("contacts", "import", str(tmp_path / "none.csv"), "--config", config, expected="none.csv")
    refused("schema", "--out", str(missing), expected="no-such-dir")
    refused("replay-pbx", "01", "--port", "70000", expected="--port")
    refused("replay-pbx", "01", "--speed", "-1", expected="--speed")
    refused("demo", "01", "--http-port", "70000", expected="--http-port")
    refused("demo", "01", "--duration", "-5", expected="--duration")
    refused("run", "--config", config, "--log-level", "loud", expected="--log-level")
    bad_trace = tmp_path / "trace"
    bad_trace.mkdir()
    (bad_trace / "ami.jsonl").write_text('{"t": 0, "msg": "banner"}\nnot json\n', encoding="utf-8")
    refused("replay-pbx", str(bad_trace), "--port", "0", expected="ami.jsonl:2")
    refused("demo", str(bad_trace), "--http-port", "0", expected="ami.jsonl:2")
