"""Panel users, their API tokens and their login sessions, on the PostgreSQL store.

A name is found whatever its case (``lower(name)``, with a unique index on it); a change that alters what a user
was granted (password, role, extension) ends their sessions in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import asyncpg

from store.postgres import rows
from store.postgres.base import Conn, PostgresBase
from store.repository import (
    Grant,
    Role,
    StoreError,
    User,
    UserExists,
    UserNotFound,
    user_email,
    user_pbxs,
)


class UserOps(PostgresBase):
    """``add_user`` ... ``grants``: the ``store.repository.Users`` concern."""

    async def add_user(self, user: User) -> User:
        created = user.created_at or time.time()

        async def work(conn: Conn) -> User:
            try:
                async with conn.transaction():  # a savepoint: the error is ours to explain, not the batch's
                    await conn.execute(
                        "INSERT INTO users (name, role, extension, display_name, password_hash, created_at, pbxs, "
                        "email) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        user.name, user.role, user.extension, user.display_name, user.password_hash, created,
                        list(user_pbxs(user.pbxs)), user_email(user.email),
                    )
            except asyncpg.UniqueViolationError:
                raise UserExists(f"a user named {user.name!r} exists already") from None
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise StoreError(f"user {user.name!r}: {exc}") from None
            return await _fetch_user(conn, user.name)

        return await self._manual(work)

    async def get_user(self, name: str) -> User | None:
        found = await self._select("SELECT * FROM users WHERE lower(name) = lower($1)", (name,), rows.user_from_row)
        return found[0] if found else None

    async def list_users(self) -> list[User]:
        return await self._select('SELECT * FROM users ORDER BY role, lower(name) COLLATE "C", name', (),
                                  rows.user_from_row)

    async def update_user(self, name: str, *, password_hash: str | None = None, role: Role | None = None,
                          extension: str | None = None, display_name: str | None = None,
                          pbxs: Collection[str] | None = None, email: str | None = None) -> User:
        changes: dict[str, Any] = {
            k: v for k, v in {"password_hash": password_hash, "role": role, "extension": extension,
                              "display_name": display_name,
                              "pbxs": None if pbxs is None else list(user_pbxs(pbxs))}.items()
            if v is not None}
        if email is not None:  # "" removes the address
            changes["email"] = user_email(email)

        async def work(conn: Conn) -> User:
            before = await _fetch_user(conn, name, lock=True)
            if changes:
                sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
                try:
                    await conn.execute(f"UPDATE users SET {sets} WHERE name = $1", before.name, *changes.values())
                except asyncpg.IntegrityConstraintViolationError as exc:
                    raise StoreError(f"user {name!r}: {exc}") from None
            after = await _fetch_user(conn, name)
            if (before.password_hash, before.role, before.extension, before.pbxs) != (
                    after.password_hash, after.role, after.extension, after.pbxs):
                # What the user's sessions were granted has changed: they end with this transaction.
                await conn.execute("DELETE FROM sessions WHERE user_name = $1", after.name)
            return after

        return await self._manual(work)

    async def remove_user(self, name: str) -> None:
        async def work(conn: Conn) -> None:
            user = await _fetch_user(conn, name, lock=True)
            await conn.execute("DELETE FROM sessions WHERE user_name = $1", user.name)
            await conn.execute("DELETE FROM api_tokens WHERE user_name = $1", user.name)
            await conn.execute("DELETE FROM users WHERE name = $1", user.name)

        await self._manual(work)

    async def add_token(self, name: str, token_hash: str, label: str | None) -> None:
        async def work(conn: Conn) -> None:
            user = await _fetch_user(conn, name)
            await conn.execute("INSERT INTO api_tokens (token_hash, user_name, label, created_at) "
                               "VALUES ($1, $2, $3, $4)", token_hash, user.name, label, time.time())

        await self._manual(work)

    async def user_of_token(self, token_hash: str) -> User | None:
        found = await self._select(
            "SELECT users.* FROM api_tokens JOIN users ON users.name = api_tokens.user_name "
            "WHERE api_tokens.token_hash = $1", (token_hash,), rows.user_from_row)
        return found[0] if found else None

    async def add_session(self, token_hash: str, user_name: str, *, created_at: float, expires_at: float,
                          address: str | None) -> None:
        async def work(conn: Conn) -> None:
            user = await _fetch_user(conn, user_name)
            await conn.execute("DELETE FROM sessions WHERE expires_at <= $1", created_at)
            await conn.execute(
                "INSERT INTO sessions (token_hash, user_name, created_at, last_used_at, expires_at, address) "
                "VALUES ($1, $2, $3, $4, $5, $6)", token_hash, user.name, created_at, created_at, expires_at,
                address)

        await self._manual(work)

    async def session_grant(self, token_hash: str, now: float) -> Grant | None:
        found = await self._select(
            "SELECT sessions.expires_at AS grant_expires, sessions.last_used_at AS grant_used, users.* "
            "FROM sessions JOIN users ON users.name = sessions.user_name "
            "WHERE sessions.token_hash = $1 AND sessions.expires_at > $2", (token_hash, now), rows.grant_from_row)
        return found[0] if found else None

    async def touch_session(self, token_hash: str, *, used_at: float, expires_at: float) -> None:
        async def work(conn: Conn) -> None:
            # Never brings back a session that has expired (or been pushed further by a later use).
            await conn.execute(
                "UPDATE sessions SET last_used_at = greatest(last_used_at, $1), "
                "expires_at = greatest(expires_at, $2) WHERE token_hash = $3 AND expires_at > $1",
                used_at, expires_at, token_hash)

        await self._manual(work)

    async def end_session(self, token_hash: str) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)

        await self._manual(work)

    async def grants(self, hashes: Collection[str]) -> dict[str, Grant]:
        if not hashes:
            return {}
        # One array parameter: any number of open sockets, one statement.
        found = await self._select(
            "SELECT sessions.token_hash AS grant_hash, sessions.expires_at AS grant_expires, "
            "sessions.last_used_at AS grant_used, users.* "
            "FROM sessions JOIN users ON users.name = sessions.user_name "
            "WHERE sessions.token_hash = ANY($1::text[]) "
            "UNION ALL "
            "SELECT api_tokens.token_hash, NULL, NULL, users.* "
            "FROM api_tokens JOIN users ON users.name = api_tokens.user_name "
            "WHERE api_tokens.token_hash = ANY($1::text[])",
            (list(hashes),), lambda row: (str(row["grant_hash"]), rows.grant_from_row(row)))
        return dict(found)


async def _fetch_user(conn: Conn, name: str, *, lock: bool = False) -> User:
    row = await conn.fetchrow("SELECT * FROM users WHERE lower(name) = lower($1)" + (" FOR UPDATE" if lock else ""),
                              name)
    if row is None:
        raise UserNotFound(name)
    return rows.user_from_row(row)
