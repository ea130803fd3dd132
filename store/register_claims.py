"""The register a team shares, backend-neutral: entries grouped by caller, claims on a number, call-back results.

Why one module: the statements are the same on SQLite and PostgreSQL (named parameters, which the PostgreSQL store
numbers: ``store/postgres/params.py``; row values, ``ON CONFLICT ... DO UPDATE ... WHERE``, ``RETURNING``), and so is
every decision. A backend's ``RegisterOps`` mixes :class:`SharedRegisterOps` in and gives only how a statement runs
inside its transaction (``_rows_in``).

**Grouping** is done by the database, in one query over the open entries (the ``(status, missed_at)`` index):
``GROUP BY pbx, caller_key``, where a withheld number (no key) groups by its entry's id, so two withheld callers are
never one row. The groups are ordered by their newest entry (time, then id: a total order) and paged by that key
(``HAVING (max(missed_at), max(id)) < (...)``), so a register of thousands of open entries is read a page at a
time. The page's entries, claims, results and directory names are then one indexed query each.

**A claim** is one row per number; taking it is one statement (an upsert that only replaces a claim that expired or
is the same user's), so two supervisors on two nodes claiming at once get one winner and one ``NumberTaken``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from cti.records import MissedEntry
from store.listing import pbx_condition, pbx_set
from store.listing_reads import RowMakers
from store.repository import (
    CLOSING_OUTCOMES,
    CallbackOutcome,
    CallbackResult,
    Claim,
    GroupKey,
    MissedGroup,
    NothingOpen,
    NumberTaken,
)

T = TypeVar("T")
#: A row as either driver gives it (``sqlite3.Row``, ``asyncpg.Record``): read by column name.
Row = Any

_CLAIM = ('INSERT INTO register_claims (pbx, caller_key, caller, "by", by_name, claimed_at, "until") '
          "VALUES (:pbx, :key, :caller, :by, :by_name, :at, :until) "
          'ON CONFLICT (pbx, caller_key) DO UPDATE SET caller = excluded.caller, "by" = excluded."by", '
          'by_name = excluded.by_name, "until" = excluded."until", '
          'claimed_at = CASE WHEN register_claims."by" = excluded."by" '
          'AND register_claims."until" > excluded.claimed_at THEN register_claims.claimed_at '
          "ELSE excluded.claimed_at END "
          'WHERE register_claims."until" <= excluded.claimed_at OR register_claims."by" = excluded."by" '
          "RETURNING *")
_OPEN_OF_NUMBER = ("SELECT * FROM missed WHERE pbx = :pbx AND caller_key = :key AND status = 'open' "
                   "ORDER BY missed_at, id")


def claim_from_row(row: Row) -> Claim:
    return Claim(pbx=row["pbx"], number_key=row["caller_key"], by=row["by"], claimed_at=float(row["claimed_at"]),
                 until=float(row["until"]), caller=row["caller"], by_name=row["by_name"])


def _pairs_condition(pairs: Sequence[tuple[str, str]], params: dict[str, Any], prefix: str = "") -> str:
    """``(pbx, caller_key)`` is one of ``pairs``: one named parameter each (a page's worth)."""
    if not pairs:
        return "1 = 0"
    parts = []
    for i, (pbx, key) in enumerate(pairs):
        params[f"gp{i}"], params[f"gk{i}"] = pbx, key
        parts.append(f"({prefix}pbx = :gp{i} AND {prefix}caller_key = :gk{i})")
    return "(" + " OR ".join(parts) + ")"


def _ids_condition(column: str, ids: Sequence[int], params: dict[str, Any]) -> str:
    if not ids:
        return "1 = 0"
    names = []
    for i, entry_id in enumerate(ids):
        params[f"id{i}"] = entry_id
        names.append(f":id{i}")
    return f"{column} IN ({', '.join(names)})"


def groups_query(*, pbxs: Collection[str] | None, limit: int | None,
                 after: GroupKey | None) -> tuple[str, dict[str, Any]]:
    """One page of groups: their PBX, number key, the withheld entry's id (``lone``), and the newest entry's place."""
    params: dict[str, Any] = {}
    where = ["status = 'open'"]
    chosen = pbx_set(pbxs)
    if chosen is not None:
        where.append(pbx_condition("pbx", chosen, params))
    lone = "CASE WHEN caller_key IS NULL THEN id END"
    sql = (f"SELECT pbx, caller_key, {lone} AS lone, count(*) AS n, min(missed_at) AS first_at, "
           f"max(missed_at) AS last_at, max(id) AS last_id FROM missed WHERE {' AND '.join(where)} "
           f"GROUP BY pbx, caller_key, {lone}")
    if after is not None:
        sql += " HAVING (max(missed_at), max(id)) < (:after_at, :after_id)"
        params["after_at"], params["after_id"] = float(after.last_at), after.last_id
    sql += " ORDER BY last_at DESC, last_id DESC"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return sql, params


def results_from_rows(rows: Sequence[Row]) -> list[CallbackResult]:
    """Result rows (one per entry) → one result per recording (same number, time, user, outcome, comment), in the
    rows' order, each with the entries it was recorded on."""
    out: dict[tuple[Any, ...], CallbackResult] = {}
    for row in rows:
        key = (row["pbx"], row["caller_key"], float(row["at"]), row["by"], row["result"], row["comment"])
        found = out.get(key)
        entry_id = int(row["entry_id"])
        if found is None:
            out[key] = CallbackResult(pbx=row["pbx"], number_key=row["caller_key"],
                                      result=cast(CallbackOutcome, row["result"]), by=row["by"],
                                      at=float(row["at"]), comment=row["comment"], entry_ids=(entry_id,))
        else:
            out[key] = CallbackResult(pbx=found.pbx, number_key=found.number_key, result=found.result, by=found.by,
                                      at=found.at, comment=found.comment, entry_ids=(*found.entry_ids, entry_id))
    return list(out.values())


class SharedRegisterOps:
    """``store.repository.SharedRegister`` over a backend's reads, transactions and ``_rows_in``."""

    _rows: ClassVar[RowMakers]
    _updated: list[MissedEntry]
    _released: list[Claim]

    if TYPE_CHECKING:  # given by the backend's base and its RegisterOps (later in the store's MRO)
        async def _manual(self, work: Callable[[Any], Awaitable[T]]) -> T: ...
        async def get_missed(self, entry_id: int) -> MissedEntry: ...

    async def _rows_in(self, conn: Any, sql: str, params: dict[str, Any]) -> Sequence[Row]:
        """Run one statement with named parameters inside the transaction ``conn``; its rows."""
        raise NotImplementedError

    async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]:
        """The rows of one query with named parameters, on the backend's general reader."""
        raise NotImplementedError

    # -- reads ---------------------------------------------------------------------------------------------------

    async def list_missed_groups(self, *, pbxs: Collection[str] | None = None, limit: int | None = None,
                                 after: GroupKey | None = None, now: float | None = None) -> list[MissedGroup]:
        when = time.time() if now is None else now
        sql, params = groups_query(pbxs=pbxs, limit=limit, after=after)
        heads = await self._read(sql, params)
        if not heads:
            return []
        pairs = [(h["pbx"], h["caller_key"]) for h in heads if h["caller_key"] is not None]
        lone = [int(h["lone"]) for h in heads if h["caller_key"] is None]
        params = {}
        entries = [self._rows.missed_from_row(r) for r in await self._read(
            f"SELECT * FROM missed WHERE status = 'open' AND ({_pairs_condition(pairs, params)} OR "
            f"{_ids_condition('id', lone, params)}) ORDER BY missed_at DESC, id DESC", params)]
        by_group: dict[tuple[str, Any], list[MissedEntry]] = {}
        for e in entries:
            by_group.setdefault((e.pbx, e.caller_key if e.caller_key is not None else e.id), []).append(e)
        claims = {(c.pbx, c.number_key): c for c in await self._claims_of(pairs, when)}
        results = await self._results_of([e.id for e in entries if e.caller_key is not None and e.id is not None])
        names = await self._contact_names(sorted({key for _, key in pairs}))
        out: list[MissedGroup] = []
        for h in heads:
            key = h["caller_key"]
            mine = by_group.get((h["pbx"], key if key is not None else int(h["lone"])), [])
            if not mine:  # closed between the two reads: the next load shows the register as it is then
                continue
            reasons = tuple(dict.fromkeys(e.reason for e in mine))
            out.append(MissedGroup(
                pbx=h["pbx"], number_key=key, caller=mine[0].caller,
                caller_name=next((e.caller_name for e in mine if e.caller_name), None),
                count=len(mine), first_at=min(e.missed_at for e in mine), last_at=mine[0].missed_at,
                reasons=reasons, entries=tuple(mine), contact_name=names.get(key) if key is not None else None,
                claim=claims.get((h["pbx"], key)) if key is not None else None,
                results=tuple(r for r in results if (r.pbx, r.number_key) == (h["pbx"], key))))
        return out

    async def _claims_of(self, pairs: Sequence[tuple[str, str]], now: float) -> list[Claim]:
        if not pairs:
            return []
        params: dict[str, Any] = {"now": float(now)}
        return [claim_from_row(r) for r in await self._read(
            f'SELECT * FROM register_claims WHERE "until" > :now AND {_pairs_condition(pairs, params)}', params)]

    async def _results_of(self, entry_ids: Sequence[int]) -> list[CallbackResult]:
        """The results recorded on these entries, newest first."""
        if not entry_ids:
            return []
        params: dict[str, Any] = {}
        rows = await self._read(f"SELECT * FROM missed_results WHERE {_ids_condition('entry_id', entry_ids, params)} "
                                "ORDER BY at DESC, id", params)
        return results_from_rows(rows)

    async def _contact_names(self, keys: Sequence[str]) -> dict[str, str]:
        """The directory's first contact (by id) of each number."""
        if not keys:
            return {}
        params: dict[str, Any] = {}
        names = []
        for i, key in enumerate(keys):
            params[f"k{i}"] = key
            names.append(f":k{i}")
        rows = await self._read(f"SELECT p.number_key, c.name FROM contact_phones p JOIN contacts c ON c.id = "
                                f"p.contact_id WHERE p.number_key IN ({', '.join(names)}) ORDER BY c.id", params)
        out: dict[str, str] = {}
        for row in rows:
            out.setdefault(row["number_key"], row["name"])
        return out

    async def list_claims(self, *, pbxs: Collection[str] | None = None, now: float | None = None) -> list[Claim]:
        params: dict[str, Any] = {"now": float(time.time() if now is None else now)}
        where = ['"until" > :now']
        chosen = pbx_set(pbxs)
        if chosen is not None:
            where.append(pbx_condition("pbx", chosen, params))
        return [claim_from_row(r) for r in await self._read(
            f"SELECT * FROM register_claims WHERE {' AND '.join(where)} ORDER BY pbx, caller_key", params)]

    async def entry_results(self, entry_id: int) -> list[CallbackResult]:
        rows = await self._read("SELECT * FROM missed_results WHERE entry_id = :entry ORDER BY at, id",
                                {"entry": entry_id})
        if not rows:
            await self.get_missed(entry_id)  # raises MissedNotFound for an unknown id
        return results_from_rows(rows)

    # -- claims --------------------------------------------------------------------------------------------------

    async def claim_number(self, pbx: str, number_key: str, *, by: str, until: float, by_name: str | None = None,
                           at: float | None = None) -> Claim:
        when = time.time() if at is None else at

        async def work(conn: Any) -> Claim:
            open_now = await self._rows_in(conn, _OPEN_OF_NUMBER, {"pbx": pbx, "key": number_key})
            if not open_now:
                raise NothingOpen(f"the number {number_key} has no open missed call on the PBX {pbx!r}")
            caller = open_now[-1]["caller"]
            taken = await self._rows_in(conn, _CLAIM, {"pbx": pbx, "key": number_key, "caller": caller, "by": by,
                                                       "by_name": by_name, "at": float(when),
                                                       "until": float(until)})
            if taken:
                return claim_from_row(taken[0])
            held = await self._rows_in(conn, "SELECT * FROM register_claims WHERE pbx = :pbx AND caller_key = :key",
                                       {"pbx": pbx, "key": number_key})
            raise NumberTaken(claim_from_row(held[0]))

        return await self._manual(work)

    async def release_number(self, pbx: str, number_key: str, *, by: str | None = None,
                             at: float | None = None) -> Claim | None:
        when = float(time.time() if at is None else at)

        async def work(conn: Any) -> Claim | None:
            params: dict[str, Any] = {"pbx": pbx, "key": number_key}
            mine = ""
            if by is not None:
                mine = ' AND "by" = :by'
                params["by"] = by
            gone = await self._rows_in(conn, "DELETE FROM register_claims WHERE pbx = :pbx AND caller_key = :key"
                                       + mine + " RETURNING *", params)
            if gone:
                return claim_from_row(gone[0])
            if by is not None:
                held = await self._rows_in(conn, "SELECT * FROM register_claims WHERE pbx = :pbx AND "
                                           'caller_key = :key AND "until" > :now',
                                           {"pbx": pbx, "key": number_key, "now": when})
                if held:
                    raise NumberTaken(claim_from_row(held[0]))
            return None

        return await self._manual(work)

    async def expire_claims(self, now: float | None = None) -> list[Claim]:
        when = float(time.time() if now is None else now)
        # Checked every few seconds on every node: a read first, so a quiet register never takes the write lock.
        if not await self._read('SELECT 1 FROM register_claims WHERE "until" <= :now LIMIT 1', {"now": when}):
            return []

        async def work(conn: Any) -> list[Claim]:
            rows = await self._rows_in(conn, 'DELETE FROM register_claims WHERE "until" <= :now RETURNING *',
                                       {"now": when})
            return sorted((claim_from_row(r) for r in rows), key=lambda c: (c.pbx, c.number_key))

        return await self._manual(work)

    async def _release_claims_of(self, conn: Any, pairs: Sequence[tuple[str, str]]) -> None:
        """In the writer's transaction: the call-back rule reached these numbers (``cti.callbacks``), so nobody
        needs to call them back any more; their claims end and are announced once the batch has committed."""
        params: dict[str, Any] = {}
        gone = await self._rows_in(conn, "DELETE FROM register_claims WHERE "
                                   f"{_pairs_condition(sorted(set(pairs)), params)} RETURNING *", params)
        self._released += sorted((claim_from_row(r) for r in gone), key=lambda c: (c.pbx, c.number_key))

    # -- results -------------------------------------------------------------------------------------------------

    async def record_callback_result(self, pbx: str, number_key: str, result: CallbackOutcome, *, by: str,
                                     comment: str | None = None, at: float | None = None) -> CallbackResult:
        when = float(time.time() if at is None else at)

        async def work(conn: Any) -> CallbackResult:
            open_now = [self._rows.missed_from_row(r)
                        for r in await self._rows_in(conn, _OPEN_OF_NUMBER, {"pbx": pbx, "key": number_key})]
            if not open_now:
                raise NothingOpen(f"the number {number_key} has no open missed call on the PBX {pbx!r}")
            ids = [e.id for e in open_now if e.id is not None]
            for entry_id in ids:
                await self._rows_in(conn, "INSERT INTO missed_results (entry_id, pbx, caller_key, at, result, "
                                    'comment, "by") VALUES (:entry, :pbx, :key, :at, :result, :comment, :by)',
                                    {"entry": entry_id, "pbx": pbx, "key": number_key, "at": when,
                                     "result": result, "comment": comment, "by": by})
            if result in CLOSING_OUTCOMES:
                for entry_id in ids:
                    await self._rows_in(conn, "UPDATE missed SET status = 'closed', closed_at = :at, "
                                        "closed_by = 'manual', closed_linkedid = NULL, "
                                        "comment = COALESCE(:comment, comment) WHERE id = :entry",
                                        {"at": when, "comment": comment, "entry": entry_id})
                    await self._rows_in(conn, "INSERT INTO missed_history (entry_id, at, action, \"by\", linkedid, "
                                        "comment) VALUES (:entry, :at, 'closed', :by, NULL, :comment)",
                                        {"entry": entry_id, "at": when, "by": by, "comment": comment})
                params: dict[str, Any] = {}
                closed = await self._rows_in(conn, f"SELECT * FROM missed WHERE {_ids_condition('id', ids, params)} "
                                             "ORDER BY id", params)
                self._updated += [self._rows.missed_from_row(r) for r in closed]
            return CallbackResult(pbx=pbx, number_key=number_key, result=result, by=by, at=when, comment=comment,
                                  entry_ids=tuple(ids))

        return await self._manual(work)
