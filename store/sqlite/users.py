"""Panel users, their API tokens and their login sessions, on the SQLite store.

A change that alters what a user was granted (password, role, extension) ends their sessions in the same
transaction, so the CLI (another process) revokes a login at once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection
from typing import Any

import aiosqlite

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
from store.sqlite import rows
from store.sqlite.base import SqliteBase


class UserOps(SqliteBase):
    """``add_user`` ... ``grants``: the ``store.repository.Users`` concern."""

    async def add_user(self, user: User) -> User:
        created = user.created_at or time.time()

        async def work(db: aiosqlite.Connection) -> User:
            try:
                await db.execute(
                    "INSERT INTO users (name, role, extension, display_name, password_hash, created_at, pbxs, email) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (user.name, user.role, user.extension, user.display_name, user.password_hash, created,
                     rows.json_list(user_pbxs(user.pbxs)), user_email(user.email)),
                )
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" in str(exc):
                    raise UserExists(f"a user named {user.name!r} exists already") from None
                raise StoreError(f"user {user.name!r}: {exc}") from None
            return await _fetch_user(db, user.name)

        return await self._manual(work)

    async def get_user(self, name: str) -> User | None:
        found = await self._select_few("SELECT * FROM users WHERE name = ?", (name,), rows.user_from_row)
        return found[0] if found else None

    async def list_users(self) -> list[User]:
        return await self._select("SELECT * FROM users ORDER BY role, name", (), rows.user_from_row)

    async def update_user(self, name: str, *, password_hash: str | None = None, role: Role | None = None,
                          extension: str | None = None, display_name: str | None = None,
                          pbxs: Collection[str] | None = None, email: str | None = None) -> User:
        changes: dict[str, Any] = {
            k: v for k, v in {"password_hash": password_hash, "role": role, "extension": extension,
                              "display_name": display_name,
                              "pbxs": None if pbxs is None else rows.json_list(user_pbxs(pbxs))}.items()
            if v is not None}
        if email is not None:  # "" removes the address
            changes["email"] = user_email(email)

        async def work(db: aiosqlite.Connection) -> User:
            before = await _fetch_user(db, name)
            if changes:
                sets = ", ".join(f"{column} = :{column}" for column in changes)
                try:
                    await db.execute(f"UPDATE users SET {sets} WHERE name = :name", {**changes, "name": name})
                except sqlite3.IntegrityError as exc:
                    raise StoreError(f"user {name!r}: {exc}") from None
            after = await _fetch_user(db, name)
            if (before.password_hash, before.role, before.extension, before.pbxs) != (
                    after.password_hash, after.role, after.extension, after.pbxs):
                # What the user's sessions were granted has changed: they end with this transaction.
                await db.execute("DELETE FROM sessions WHERE user_name = ?", (after.name,))
            return after

        return await self._manual(work)

    async def remove_user(self, name: str) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            user = await _fetch_user(db, name)
            # Explicit, not left to ON DELETE CASCADE: a connection without foreign_keys=ON would skip that.
            await db.execute("DELETE FROM sessions WHERE user_name = ?", (user.name,))
            await db.execute("DELETE FROM api_tokens WHERE user_name = ?", (user.name,))
            await db.execute("DELETE FROM users WHERE name = ?", (user.name,))

        await self._manual(work)

    async def add_token(self, name: str, token_hash: str, label: str | None) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            user = await _fetch_user(db, name)
            await db.execute("INSERT INTO api_tokens (token_hash, user_name, label, created_at) VALUES (?, ?, ?, ?)",
                             (token_hash, user.name, label, time.time()))

        await self._manual(work)

    async def user_of_token(self, token_hash: str) -> User | None:
        found = await self._select_few(
            "SELECT users.* FROM api_tokens JOIN users ON users.name = api_tokens.user_name "
            "WHERE api_tokens.token_hash = ?", (token_hash,), rows.user_from_row)
        return found[0] if found else None

    async def add_session(self, token_hash: str, user_name: str, *, created_at: float, expires_at: float,
                          address: str | None) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            user = await _fetch_user(db, user_name)
            await db.execute("DELETE FROM sessions WHERE expires_at <= ?", (created_at,))
            await db.execute(
                "INSERT INTO sessions (token_hash, user_name, created_at, last_used_at, expires_at, address) "
                "VALUES (?, ?, ?, ?, ?, ?)", (token_hash, user.name, created_at, created_at, expires_at, address))

        await self._manual(work)

    async def session_grant(self, token_hash: str, now: float) -> Grant | None:
        found = await self._select_few(
            "SELECT sessions.expires_at AS grant_expires, sessions.last_used_at AS grant_used, users.* "
            "FROM sessions JOIN users ON users.name = sessions.user_name "
            "WHERE sessions.token_hash = ? AND sessions.expires_at > ?", (token_hash, now), rows.grant_from_row)
        return found[0] if found else None

    async def touch_session(self, token_hash: str, *, used_at: float, expires_at: float) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            # Never brings back a session that has expired (or been pushed further by a later use).
            await db.execute(
                "UPDATE sessions SET last_used_at = max(last_used_at, :used), expires_at = max(expires_at, :expires) "
                "WHERE token_hash = :hash AND expires_at > :used",
                {"used": used_at, "expires": expires_at, "hash": token_hash})

        await self._manual(work)

    async def end_session(self, token_hash: str) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

        await self._manual(work)

    async def grants(self, hashes: Collection[str]) -> dict[str, Grant]:
        if not hashes:
            return {}
        # One JSON array parameter instead of one "?" per hash: any number of open sockets, one statement.
        found = await self._select(
            "SELECT sessions.token_hash AS grant_hash, sessions.expires_at AS grant_expires, "
            "sessions.last_used_at AS grant_used, users.* "
            "FROM sessions JOIN users ON users.name = sessions.user_name "
            "WHERE sessions.token_hash IN (SELECT value FROM json_each(:hashes)) "
            "UNION ALL "
            "SELECT api_tokens.token_hash, NULL, NULL, users.* "
            "FROM api_tokens JOIN users ON users.name = api_tokens.user_name "
            "WHERE api_tokens.token_hash IN (SELECT value FROM json_each(:hashes))",
            {"hashes": json.dumps(list(hashes))}, lambda row: (str(row["grant_hash"]), rows.grant_from_row(row)))
        return dict(found)


async def _fetch_user(db: aiosqlite.Connection, name: str) -> User:
    async with db.execute("SELECT * FROM users WHERE name = ?", (name,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise UserNotFound(name)
    return rows.user_from_row(row)
