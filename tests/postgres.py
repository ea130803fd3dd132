"""A throwaway PostgreSQL cluster for the tests: Debian's binaries, a temporary folder, a free loopback port.

Each test process (each pytest-xdist worker, or the one process under ``-n 0``) starts its own cluster the
first time a test asks for a PostgreSQL database, and stops and removes it when the process exits (a process
killed before its exit handlers leaves its cluster to the next start, which removes it): the workers
share nothing, so no lock or shared state is needed between them, and a worker that never runs a PostgreSQL test
starts nothing. The cluster trusts loopback connections of its one superuser (``cti``) and runs without fsync: it
holds test data only. PostgreSQL refuses to run as root, so as root ``initdb`` and the server run as the
``postgres`` user (``runuser``), the folder theirs.

Each test gets a fresh database quickly: the schema is migrated once into a template database, and every test's
database is ``CREATE DATABASE ... TEMPLATE`` of it (a copy, not a migration: ~0.05 s). The databases of earlier tests
are dropped when the next one is made, so a worker's disk holds a couple of them at a time.

No PostgreSQL installed is a failure (never a skip) that says how to install it: ``.ci/setup-debian``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

SUPERUSER = "cti"
TEMPLATE = "cti_template"
#: The clusters' folders in the temporary directory start with this.
PREFIX = "cti-pg-"
INSTALL_HINT = ("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): the store's contract tests "
                "run on it too. Install it with .ci/setup-debian (Debian's `postgresql` package).")


def postgres_bin() -> Path:
    """The newest PostgreSQL's binaries Debian installed (``/usr/lib/postgresql/<version>/bin``)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not found:
        pytest.fail(INSTALL_HINT, pytrace=False)

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in folder.parent.name.split(".") if part.isdigit())

    return max(found, key=version)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; ``url(db)`` reaches one of its databases."""

    root: Path
    bin: Path
    port: int
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _made: list[str] = field(default_factory=list)
    _template_ready: bool = False
    #: Seconds spent starting the cluster and migrating the template (what it adds to the suite).
    setup_seconds: float = 0.0

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    async def fresh_database(self) -> str:
        """A new database with the store's schema (a copy of the template); returns its URL."""
        from store.postgres import PostgresStore

        admin = await asyncpg.connect(self.url("postgres"))
        try:
            if not self._template_ready:
                started = time.monotonic()
                await admin.execute(f"CREATE DATABASE {TEMPLATE}")
                async with PostgresStore.open(self.url(TEMPLATE)):
                    pass  # opening migrates
                self._template_ready = True
                self.setup_seconds += time.monotonic() - started
            for old in self._made:  # earlier tests' databases: their stores are closed by now
                await admin.execute(f"DROP DATABASE IF EXISTS {old} WITH (FORCE)")
            self._made.clear()
            name = f"cti_test_{os.getpid()}_{next(self._names)}"
            # PostgreSQL 15's default strategy (WAL_LOG) copies a small template in ~30 ms here, FILE_COPY ~200 ms
            # (two checkpoints each).
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
            self._made.append(name)
            return self.url(name)
        finally:
            await admin.close()

    def stop(self) -> None:
        # A folder left half-made (its process killed during initdb) holds no cluster: pg_ctl fails, rmtree still runs.
        with contextlib.suppress(OSError, subprocess.SubprocessError, RuntimeError):
            _run(self.bin / "pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres(*command: str | Path) -> list[str]:
    """The command as the ``postgres`` user when we are root (PostgreSQL refuses root), else as ourselves."""
    args = [str(c) for c in command]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _run(*command: str | Path) -> None:
    done = subprocess.run(_as_postgres(*command), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(binaries: Path) -> None:
    """Stop and remove the clusters of test processes that died without their exit handlers (SIGKILL, a timeout):
    each cluster's folder names its owner in ``owner.pid``."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            Cluster(folder, binaries, 0).stop()


def start_cluster() -> Cluster:
    """initdb into a temporary folder and start the server on a free loopback port (a few seconds)."""
    started = time.monotonic()
    binaries = postgres_bin()
    _remove_orphans(binaries)
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    (root / "owner.pid").write_text(str(os.getpid()))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    try:
        _run(binaries / "initdb", "-D", str(root / "data"), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync")
        for attempt in itertools.count():
            port = _free_port()
            options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                       "-c full_page_writes=off -c max_connections=200")
            try:
                _run(binaries / "pg_ctl", "-D", str(root / "data"), "-l", str(root / "server.log"), "-o", options,
                     "-w", "-t", "60", "start")
                break
            except RuntimeError:
                if attempt >= 2:  # not a port taken meanwhile by someone else: say why
                    log = root / "server.log"
                    raise RuntimeError(log.read_text(errors="replace") if log.exists() else "no log") from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    cluster = Cluster(root, binaries, port, setup_seconds=time.monotonic() - started)
    atexit.register(cluster.stop)
    return cluster


_cluster: Cluster | None = None


def cluster() -> Cluster:
    """This process's cluster, started on first use and stopped when the process exits."""
    global _cluster
    if _cluster is None:
        _cluster = start_cluster()
    return _cluster
