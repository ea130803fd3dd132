"""A PostgreSQL server for one benchmark run: Debian's binaries, a temporary folder, a free loopback port.

Why the bench has its own: ``bench/`` never imports ``tests/`` (the test helper starts one cluster per pytest
worker, fails the test when PostgreSQL is missing, and trades durability for speed). Here the server is as a
site would run it by default (``fsync`` and ``synchronous_commit`` on: a commit waits for the WAL on disk) unless
``durable=False``, because the bench measures how much the store writes; and it lives exactly as long as the
``async with`` block. As root, ``initdb`` and the server run as the ``postgres`` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncpg

SUPERUSER = "cti"


def _binaries() -> Path:
    """``/usr/lib/postgresql/<newest>/bin``."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not found:
        raise SystemExit("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): .ci/setup-debian "
                         "installs Debian's package")
    return found[-1].parent


def _as_owner(*command: str | Path) -> list[str]:
    args = [str(c) for c in command]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PgServer:
    """``async with PgServer() as pg: url = await pg.database("name")``; stopped and removed on exit."""

    def __init__(self, *, durable: bool = True, max_connections: int = 200) -> None:
        self.durable = durable
        self.max_connections = max_connections
        self.bin = _binaries()
        self.root = Path(tempfile.mkdtemp(prefix="cti-bench-pg-"))
        self.port = 0

    @property
    def version(self) -> str:
        return self.bin.parent.name

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str | Path) -> None:
        done = subprocess.run(_as_owner(*command), capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{Path(command[0]).name} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    async def __aenter__(self) -> Self:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        await asyncio.to_thread(self._run, self.bin / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust",
                                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        safety = "" if self.durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   f"-c max_connections={self.max_connections}{safety}")
        await asyncio.to_thread(self._run, self.bin / "pg_ctl", "-D", data, "-l", self.root / "server.log",
                                "-o", options, "-w", "-t", "60", "start")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await asyncio.to_thread(self._run, self.bin / "pg_ctl", "-D", self.root / "data", "-m", "fast",
                                    "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    async def database(self, name: str) -> str:
        """Create an empty database; its URL (the store migrates it when first opened)."""
        admin = await asyncpg.connect(self.url("postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return self.url(name)

    def pids(self) -> list[int]:
        """The server's processes now (the postmaster and its children: backends, WAL writer, ...)."""
        try:
            main = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        out = [main]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == main:
                    out.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        return out
