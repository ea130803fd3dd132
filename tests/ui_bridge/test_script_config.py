"""``[scripts]``: the scripts folder is checked as the daemon starts, and a broken script stops the start.

What the person who writes a script relies on: ``cti check-config`` and ``cti run`` name every problem of every file
(the file, the line, the step) and refuse to go on; the daemon itself, however started, never runs with a broken
script; a relative folder is the config file's; the shipped examples load, with the default named.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from companion.daemon import Daemon
from tests.cli_runner import cti
from tests.daemon.conftest import REPO, settings_for, write_config
from ui_bridge.script_library import ScriptProblems

BROKEN = '''name = "broken"
title = "Сломанный сценарий"
start = "a"

[[steps]]
id = "a"
kind = "choice"
options = [{ label = "Да", value = "yes", next = "nowhere" }]

[[steps]]
id = "a"
kind = "end"
'''


def scripts_folder(tmp: Path, *texts: str) -> Path:
    folder = tmp / "scripts"
    folder.mkdir()
    for n, text in enumerate(texts):
        (folder / f"script{n}.toml").write_text(text, encoding="utf-8")
    return folder


def test_check_config_names_every_problem_with_its_file_line_and_step(tmp_path: Path) -> None:
    folder = scripts_folder(tmp_path, BROKEN)
    config = write_config(tmp_path, 5038, sections={"scripts": 'folder = "scripts"'})  # relative: the config's
    ran = cti("check-config", "--config", str(config), check=False)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert f"{folder / 'script0.toml'}:6: step 'a': option 'yes': 'nowhere' is no step of this script" in ran.stderr
    assert f"{folder / 'script0.toml'}:11: step 'a': duplicate step id 'a'" in ran.stderr
    ran = cti("run", "--config", str(config), check=False)
    assert ran.returncode == 2 and "duplicate step id 'a'" in ran.stderr


def test_the_daemon_refuses_to_start_with_a_broken_script(tmp_path: Path) -> None:
    scripts_folder(tmp_path, BROKEN)
    settings = settings_for(tmp_path, 5038, sections={"scripts": 'folder = "scripts"'})
    with pytest.raises(ScriptProblems) as refused:
        Daemon(settings)
    assert any("script0.toml:11: step 'a': duplicate step id 'a'" in p for p in refused.value.problems)


def test_several_scripts_need_a_default_and_each_named_script_must_exist(tmp_path: Path) -> None:
    folder = tmp_path / "scripts"
    shutil.copytree(REPO / "examples" / "scripts", folder)
    config = write_config(tmp_path, 5038, sections={"scripts": f'folder = "{folder}"'})
    ran = cti("check-config", "--config", str(config), check=False)
    assert ran.returncode == 2 and "scripts.default: the folder" in ran.stderr and "car-service-en" in ran.stderr
    config = write_config(tmp_path, 5038, sections={"scripts": f'folder = "{folder}"\ndefault = "car-service"\n'
                                                               'queues = { sales = "no-such" }'})
    ran = cti("check-config", "--config", str(config), check=False)
    assert ran.returncode == 2 and "scripts.queues.sales: no script named 'no-such'" in ran.stderr
    config = write_config(tmp_path, 5038, sections={"scripts": f'folder = "{folder}"\ndefault = "car-service"'})
    ran = cti("check-config", "--config", str(config))
    assert ran.returncode == 0, ran.stderr


async def test_the_shipped_examples_load_into_a_daemon(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, 5038, sections={
        "scripts": f'folder = "{REPO / "examples" / "scripts"}"\ndefault = "car-service"'})
    daemon = await asyncio.to_thread(Daemon, settings)
    assert daemon.scripts is not None
    assert sorted(daemon.scripts.library.scripts) == ["car-service", "car-service-en"]
    assert daemon.scripts.library.for_call("support", "74950000101").name == "car-service"  # type: ignore[union-attr]
