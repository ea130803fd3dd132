"""One real ``cti`` process per command group: the entry point, real stdin/stdout/stderr, a real terminal.

Everything else about the commands is tested in-process (tests/cli_runner.py), which cannot show that the installed
script starts, that a command reads a real pipe, writes bytes to a real stdout or sees a real terminal. Each test
here is one child process (a Python start-up costs about a second): the groups are the daemon (run, demo,
check-config), the listings (calls, missed), the panel's users, the directory's CSV, and the PBX helpers.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_runner import cti
from tests.conftest import UNIT
from tests.daemon.conftest import CTI, write_config
from tests.security.test_cli_hostile import RAW, journal_with_hostile_names
from tests.traces import REPO, TRACES

#: The console script pyproject.toml installs (``cti = "companion.cli:main"``), beside this Python.
SCRIPT = Path(sys.executable).parent / "cti"


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m companion.cli ARGS`` as a child process, which must succeed."""
    proc = subprocess.run([*CTI, *args], capture_output=True, text=True, timeout=60 * UNIT, cwd=REPO, input=input,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"cti {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
    return proc


def test_the_installed_script_runs_the_demo_to_its_end(tmp_path: Path) -> None:
    """``cti demo --once``: the replay PBX, the daemon and the panel in one real process, the journal printed live."""
    assert SCRIPT.is_file(), f"the console script is not installed at {SCRIPT} (pip install -e .)"
    proc = subprocess.run([str(SCRIPT), "demo", str(TRACES / "01-direct-answered"), "--once", "--speed", "0",
                           "--http-port", "0", "--store", str(tmp_path / "demo.sqlite")],
                          capture_output=True, text=True, timeout=60 * UNIT, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "ringing" in proc.stdout and "1 call(s) in the journal" in proc.stdout, proc.stdout
    truth = json.loads((TRACES / "01-direct-answered" / "truth.json").read_text())["calls"][0]
    # The live lines name the caller, as the person watching reads them (not the call's internal id).
    answered = [line for line in proc.stdout.splitlines() if line.startswith("answered")]
    assert answered and truth["caller"] in answered[0] and f"by {truth['answered_by']}" in answered[0], proc.stdout
    assert "Traceback" not in proc.stderr


def test_listings_on_a_real_terminal(tmp_path: Path) -> None:
    """``cti calls --format csv`` with its stdout on a pseudo-terminal, as an admin runs it: control characters
    from callers are shown as escapes, rich markup stays literal (in a pipe the data is exact: test_cli_hostile)."""
    config = str(journal_with_hostile_names(tmp_path))
    out = run_on_a_terminal("calls", "--config", config, "--format", "csv")
    assert r"\x1b[2J\x1b[Hwiped" in out and "[/]" in out
    assert not [raw for raw in RAW if raw in out.replace("\r\n", "\n")]


def run_on_a_terminal(*args: str) -> str:
    """The real command with its stdout on a pseudo-terminal; what it printed."""
    primary, secondary = pty.openpty()
    chunks: list[bytes] = []
    try:
        with subprocess.Popen([*CTI, *args], stdout=secondary, stderr=subprocess.DEVNULL, cwd=REPO) as proc:
            os.close(secondary)
            deadline = time.monotonic() + 30 * UNIT
            while True:
                readable, _, _ = select.select([primary], [], [], max(0.0, deadline - time.monotonic()))
                assert readable, "the command printed nothing more and did not end"
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # EIO: the command ended and closed its side
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.wait(timeout=30 * UNIT) == 0
    finally:
        os.close(primary)
    return b"".join(chunks).decode("utf-8")


def test_users_add_reads_the_password_from_a_real_pipe(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    added = run("users", "add", "anna", "--role", "agent", "--extension", "101", "--password-stdin",
                "--config", config, input="колесо-2026\n")
    assert "user anna (agent, extension 101) created" in added.stdout
    (user,) = json.loads(cti("users", "list", "--config", config, "--format", "json").stdout)
    assert user["name"] == "anna" and user["display_name"] == "Анна Смирнова"


def test_contacts_export_writes_cp1251_bytes_to_a_real_stdout(tmp_path: Path) -> None:
    """The export writes bytes to stdout's buffer itself (the encoding is the user's choice, not the locale's)."""
    config = str(write_config(tmp_path, 5038))
    file = tmp_path / "k.csv"
    file.write_text("name;phone\nИванов Пётр;89161234567\n", encoding="utf-8")
    cti("contacts", "import", str(file), "--config", config)
    proc = subprocess.run([*CTI, "contacts", "export", "--config", config, "--encoding", "cp1251"],
                          capture_output=True, timeout=60 * UNIT, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "Иванов Пётр".encode("cp1251") in proc.stdout and "Иванов".encode() not in proc.stdout


def test_ami_user_prints_the_manager_conf_section(tmp_path: Path) -> None:
    """The PBX helpers' group (``ami-user``, ``schema``, ``replay-pbx``): the section to paste into manager.conf."""
    config = str(write_config(tmp_path, 5038))
    section = run("ami-user", "--config", config).stdout
    assert section == cti("ami-user", "--config", config).stdout
    assert section.startswith("[cti]") and "127.0.0.1" in section, section


def test_store_copy_moves_a_site_to_postgresql_in_its_own_process(tmp_path: Path) -> None:
    """The store group (``store migrate``, ``store copy``): the PostgreSQL driver loaded by the real entry point,
    the progress bars forced onto a pipe (stderr), the counts on stdout."""
    import asyncio

    from tests.store.test_store_copy import empty_database, printed_counts

    config = str(write_config(tmp_path, 5038))
    cti("users", "add", "anna", "--role", "admin", "--password-stdin", "--config", config, input="колесо-2026\n")
    target = asyncio.run(empty_database())
    proc = run("store", "copy", "--from", f"sqlite:{tmp_path / 'journal.sqlite'}", "--to", target, "--progress")
    assert ["users", "1", "1", "ok"] in printed_counts(proc.stdout), proc.stdout
    assert "users" in proc.stderr and "1/1" in proc.stderr, proc.stderr
