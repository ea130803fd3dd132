"""The example's ``[live]`` block, switched on as a site would: ``cti check-config`` says what keeps the tap from
starting before the daemon runs, and warns when more calls may be tapped than the live workers decode on time."""

from __future__ import annotations

import re
from pathlib import Path

from companion.config import load_config
from tests.cli_runner import cti
from tests.traces import REPO


def live_block_on(tmp_path: Path, **changes: str) -> Path:
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    start = text.index("[live]\n")
    end = text.index("\n[", start) + 1 if "\n[" in text[start + 1:] else len(text)
    block = re.sub(r"(?m)^# (\w+ = )", r"\1", text[start:end]).replace("enabled = false", "enabled = true", 1)
    block = block.replace('spy_context = "cti-spy"', "")  # the example's alternative to the application
    for key, value in changes.items():
        block = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", block)
    config = tmp_path / "cti.toml"
    config.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return config


def test_the_examples_live_block_is_checked_before_the_daemon_starts(tmp_path: Path) -> None:
    config = live_block_on(tmp_path)
    live = load_config(config).live
    assert (live.enabled, live.server, live.sip_port, live.max_taps, live.workers) == (True, "192.0.2.10", 5070, 2, 1)
    refused = cti("check-config", "--config", str(config), check=False, env={"CTI_TAP_SECRET": None})
    assert refused.returncode == 2
    assert "live.secret_env: the environment variable CTI_TAP_SECRET is not set" in refused.stderr
    ok = cti("check-config", "--config", str(config), env={"CTI_TAP_SECRET": "s3cret"})
    assert ": ok" in ok.stdout and "warning" not in ok.stdout


def test_more_taps_than_the_workers_keep_up_with_is_a_warning_with_the_values_to_set(tmp_path: Path) -> None:
    config = live_block_on(tmp_path, max_taps="8")
    ok = cti("check-config", "--config", str(config), env={"CTI_TAP_SECRET": "s3cret"})
    assert ok.returncode == 0
    (warning,) = [line for line in ok.stdout.splitlines() if "warning" in line]
    assert "max_taps = 8 is 16 lanes" in warning and "Set workers = 4" in warning
