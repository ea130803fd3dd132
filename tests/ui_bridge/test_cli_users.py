"""`cti users` and a login with what it created, as an admin would set up the panel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from store import StoreSettings, open_store
from tests.cli_runner import cti, cti_async
from tests.conftest import ReplayFactory
from tests.daemon.conftest import RunningDaemon, settings_for, write_config
from ui_bridge.auth import verify_password


def test_users_add_list_passwd_remove(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    added = cti("users", "add", "anna", "--role", "agent", "--extension", "101", "--password-stdin",
                "--config", config, input="колесо-2026\n")
    assert "created" in added.stdout
    listed = cti("users", "list", "--config", config, "--format", "json").stdout
    assert '"name": "anna"' in listed and '"display_name": "Анна Смирнова"' in listed  # from [pbx.agents]
    assert "колесо" not in listed and "scrypt" not in listed

    async def stored_hash() -> str | None:
        async with open_store(StoreSettings(path=tmp_path / "journal.sqlite"), region="RU") as store:
            user = await store.get_user("ANNA")  # names are case-insensitive
            assert user is not None
            return user.password_hash

    first = asyncio.run(stored_hash())
    assert first is not None and "колесо" not in first and verify_password("колесо-2026", first)

    again = cti("users", "add", "Anna", "--role", "admin", "--password-stdin", "--config", config,
                input="something-long\n", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr
    short = cti("users", "add", "oleg", "--role", "agent", "--extension", "102", "--password-stdin",
                "--config", config, input="short\n", check=False)
    assert short.returncode == 2 and "at least 8" in short.stderr
    no_ext = cti("users", "add", "oleg", "--role", "agent", "--password-stdin", "--config", config,
                 input="long-enough-1\n", check=False)
    assert no_ext.returncode == 2 and "--extension" in no_ext.stderr

    cti("users", "passwd", "anna", "--password-stdin", "--config", config, input="новый-пароль-1\n")
    assert verify_password("новый-пароль-1", asyncio.run(stored_hash()) or "")
    token = cti("users", "token", "anna", "--label", "CRM", "--config", config).stdout.strip()
    assert token.startswith("cti_")
    cti("users", "remove", "anna", "--config", config)
    assert "anna" not in cti("users", "list", "--config", config, "--format", "json").stdout
    gone = cti("users", "remove", "anna", "--config", config, check=False)
    assert gone.returncode == 1 and "no user named" in gone.stderr


async def test_a_user_made_by_the_cli_logs_in_to_the_running_panel(tmp_path: Path, replay_pbx: ReplayFactory) -> None:
    from tests.traces import TRACES

    pbx = await replay_pbx([TRACES / "01-direct-answered"], speed=0)
    settings = settings_for(tmp_path, pbx.address[1])
    async with RunningDaemon(settings) as running:
        await cti_async("users", "add", "admin", "--role", "admin", "--password-stdin",
                        "--config", str(tmp_path / "config.toml"), input="admin-password-1\n")
        assert running.daemon.panel_server is not None
        async with httpx.AsyncClient(base_url=running.daemon.panel_server.url) as http:
            response = await http.post("/api/login", json={"name": "admin", "password": "admin-password-1"})
            assert response.status_code == 200 and response.json()["user"]["role"] == "admin"


def test_a_busy_panel_port_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = write_config(tmp_path, 5038, http_port=port)
        proc = cti("run", "--config", str(config), check=False)
        assert proc.returncode == 1
        assert f"the panel cannot listen on 127.0.0.1:{port}" in proc.stderr
        assert "Traceback" not in proc.stderr
        demo = cti("demo", "01-direct", "--http-port", str(port), "--duration", "5", "--folder", str(tmp_path / "demo"),
                   check=False)
        assert demo.returncode == 1 and "--http-port 0" in demo.stderr and "Traceback" not in demo.stderr


async def test_with_the_panel_disabled_the_daemon_runs_without_a_port(tmp_path: Path,
                                                                        replay_pbx: ReplayFactory) -> None:
    from cti.effects import CallEnded
    from tests.traces import TRACES

    pbx = await replay_pbx([TRACES / "01-direct-answered"], speed=0)
    settings = settings_for(tmp_path, pbx.address[1], http_extra="enabled = false")
    assert settings.http.enabled is False
    async with RunningDaemon(settings) as running:
        assert running.daemon.panel is None and running.daemon.panel_server is None
        await running.wait_for_effect(CallEnded)
