"""The deployment files of ``deploy/`` against the code they run: the systemd unit and the container image.

The container image cannot be built here (no image registry is reachable), so its Containerfile is checked for
what would break the build or the running container: every file it copies exists, it copies every package the
project installs, it runs ``cti`` as a non-root user on the port it exposes and health-checks ``/healthz``, and
the configuration it ships loads and keeps the store on the volume.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from companion.config import load_config
from tests.cli_runner import cti
from tests.traces import REPO
from ui_bridge.settings import HttpSettings

UNIT_FILE = REPO / "deploy" / "cti.service"
CONTAINERFILE = REPO / "deploy" / "Containerfile"


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section → key → every value (a key may repeat: ``SystemCallFilter``), comments dropped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"a key outside any section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_systemd_unit_runs_the_daemon_as_its_own_user_and_keeps_the_store_writable(tmp_path: Path) -> None:
    unit = unit_sections(UNIT_FILE.read_text(encoding="utf-8"))
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert service["User"] == service["Group"] == "cti"
    assert service["ExecStart"].endswith("/cti run --config /etc/cti/config.toml")
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    # ProtectSystem=strict leaves only the state directory writable: the SQLite file and its -wal/-shm live there.
    assert service["ProtectSystem"] == "strict" and service["StateDirectory"] == "cti"
    assert service["WorkingDirectory"] == "/var/lib/cti"
    assert service["NoNewPrivileges"] == "yes" and service["PrivateTmp"] == "yes"
    assert "AF_INET" in service["RestrictAddressFamilies"] and "AF_UNIX" in service["RestrictAddressFamilies"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    # A configuration error is not restarted in a loop: the status the unit names is the one `cti run` gives one.
    broken = tmp_path / "config.toml"
    broken.write_text("[ami]\nport = 0\n", encoding="utf-8")
    ran = cti("run", "--config", str(broken), check=False)
    assert ran.returncode == int(service["RestartPreventExitStatus"]) == 2, ran.stderr

    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # systemd's own check of every key and value (the program path made one that exists)
        program = sys.executable  # verify checks that the program exists, it does not run it
        checked = tmp_path / "cti.service"
        checked.write_text(UNIT_FILE.read_text(encoding="utf-8").replace("/opt/cti/venv/bin/cti", program),
                           encoding="utf-8")
        verify = subprocess.run([analyze, "verify", str(checked)], capture_output=True, text=True, timeout=60,
                                cwd=tmp_path, check=False)
        assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr


def instructions(text: str) -> list[tuple[str, str]]:
    """A Containerfile's instructions (continuation lines joined), as (INSTRUCTION, arguments)."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_containerfile_copies_what_exists_and_runs_the_daemon_unprivileged() -> None:
    steps = instructions(CONTAINERFILE.read_text(encoding="utf-8"))
    base = [args for word, args in steps if word == "FROM"]
    assert len(base) == 1 and "python:3.11-slim" in base[0]
    copied: list[str] = []
    for word, args in steps:
        if word == "COPY":
            *sources, _dest = args.split()
            copied += sources
    missing = [source for source in copied if not (REPO / source).exists()]
    assert not missing, f"the Containerfile copies files the checkout has not got: {missing}"
    # Every package pip would install from the checkout is copied in (a new one must not be forgotten here).
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()
                and any(re.fullmatch(pattern.replace("*", ".*"), p.name) for pattern in patterns)}
    assert packages <= set(copied), f"packages not copied: {packages - set(copied)}"
    assert "setup.py" in copied  # it builds the AMI framer's C fast path (asterisk/_speedups.c)
    assert "cti" in pyproject["project"]["scripts"]

    last = {word: args for word, args in steps}
    assert last["USER"] not in ("root", "0")
    assert last["ENTRYPOINT"] == '["cti"]'
    assert last["CMD"] == '["run", "--config", "/etc/cti/config.toml"]'
    assert last["STOPSIGNAL"] == "SIGTERM"
    # The configuration it ships: the panel reachable from outside the container on the exposed port, the store
    # on the volume, the health check asking that port's /healthz.
    config_source = next(args.split()[0] for word, args in steps if word == "COPY" and "/etc/cti/config.toml" in args)
    settings = load_config(REPO / config_source)
    assert settings.http.host == "0.0.0.0"
    assert last["EXPOSE"] == str(settings.http.port) == str(HttpSettings().port)
    assert f"127.0.0.1:{settings.http.port}/healthz" in last["HEALTHCHECK"]
    volume = last["VOLUME"].strip('[]"')
    assert settings.store.path.parent == Path(volume)
    assert settings.ami.secret_env and not settings.ami.secret  # the secret comes from the environment
