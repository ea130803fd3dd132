"""`cti users add --email` and `cti users email`: where a user's complaint notifications go, set by an admin."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_runner import cti
from tests.daemon.conftest import write_config


def emails(config: str) -> dict[str, str | None]:
    listed = json.loads(cti("users", "list", "--config", config, "--format", "json").stdout)
    return {u["name"]: u["email"] for u in listed}


def test_an_address_is_set_with_the_user_changed_and_removed(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    cti("users", "add", "anna", "--role", "agent", "--extension", "101", "--email", "Anna@Example.RU",
        "--password-stdin", "--config", config, input="колесо-2026\n")
    cti("users", "add", "boss", "--role", "admin", "--password-stdin", "--config", config, input="колесо-2027\n")
    assert emails(config) == {"anna": "Anna@example.ru", "boss": None}
    assert "Anna@example.ru" in cti("users", "list", "--config", config).stdout  # the table shows it too
    changed = cti("users", "email", "boss", "boss@почта.рф", "--config", config)
    assert "boss: e-mail boss@почта.рф" in changed.stdout
    cti("users", "email", "anna", "--remove", "--config", config)
    assert emails(config) == {"anna": None, "boss": "boss@почта.рф"}


def test_an_address_that_could_add_a_header_or_a_recipient_is_refused(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    for bad in ("anna@example.ru\r\nBcc: all@example.ru", "anna@example.ru,boss@example.ru", "anna", "a@b@c.ru",
                "anna@localhost"):
        ran = cti("users", "add", "anna", "--role", "qa", "--email", bad, "--password-stdin", "--config", config,
                  input="колесо-2026\n", check=False)
        assert ran.returncode == 2 and "--email" in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    assert emails(config) == {}  # nothing was created
    cti("users", "add", "anna", "--role", "qa", "--password-stdin", "--config", config, input="колесо-2026\n")
    refused = cti("users", "email", "anna", "anna@example.ru\nBcc: x@example.ru", "--config", config, check=False)
    assert refused.returncode == 2 and "no spaces, line breaks" in refused.stderr
    neither = cti("users", "email", "anna", "--config", config, check=False)
    assert neither.returncode == 2 and "--remove" in neither.stderr
    nobody = cti("users", "email", "nobody", "x@example.ru", "--config", config, check=False)
    assert nobody.returncode == 1 and "no user named" in nobody.stderr
    assert emails(config) == {"anna": None}
