"""The cluster's own connections (a lease's, the bus's listener and publisher): outside the pools, named, watched.

A pool may close, replace or hand a connection to another task; a lease must live exactly as long as its
connection, and a listener's LISTENs belong to its session. So each is a plain ``asyncpg.Connection`` of its own.

Each is opened with server-side TCP keepalives short enough that the server ends the session of a client that went
silent (a cable pulled, a machine frozen) within ``tcp_keepalives_idle + interval * count`` seconds (11 s), instead
of the operating system's default two hours: a lease held by a vanished node is then free in seconds. The holder's
own check (``CHECK_INTERVAL`` + ``CHECK_TIMEOUT``: 4 s) notices first, so it stops acting before another node can
take over. On a Unix-domain socket the keepalive settings do nothing (and a process that dies closes the socket).
"""

from __future__ import annotations

import asyncpg

from store.repository import StoreError
from store.settings import without_password

#: Errors that mean the database or the connection failed (not a bug of ours). ``InternalClientError`` ("cannot
#: switch to state 15") is what asyncpg raises on a connection the server terminated in the middle of a statement:
#: the connection is gone, not our code wrong, so the writer keeps its items staged and retries.
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
             TimeoutError)
#: Seconds to connect before giving up.
CONNECT_TIMEOUT = 10.0
#: How often an idle lease or listener connection is checked with ``SELECT 1`` (seconds), and how long the check
#: may take before the connection counts as dead.
CHECK_INTERVAL = 2.0
CHECK_TIMEOUT = 2.0
#: Seconds a graceful close may take before the connection is aborted.
CLOSE_TIMEOUT = 2.0
_KEEPALIVE = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}


async def connect_own(url: str, purpose: str) -> asyncpg.Connection:
    """A new connection for ``purpose`` (shown as ``cti-companion <purpose>`` in ``pg_stat_activity``).

    Raises ``StoreError`` when the database cannot be reached or refuses the connection.
    """
    settings = {"application_name": f"cti-companion {purpose}"[:63], **_KEEPALIVE}
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT, server_settings=settings)
    except DB_ERRORS as exc:
        raise StoreError(f"{without_password(url)}: cannot connect for the {purpose}: {exc}") from exc


async def close_own(conn: asyncpg.Connection) -> None:
    """Close gracefully (the server ends the session at once), or abort if that fails or takes too long."""
    try:
        await conn.close(timeout=CLOSE_TIMEOUT)
    except Exception:  # whatever went wrong, abort: the server then ends the session when it notices
        conn.terminate()
