"""Which PBXs a panel user sees, and which PBX a request is about: the one place these rules are written.

Why one module: a linkedid and an extension mean something only within their PBX, and a user belongs to some
PBXs (``User.pbxs``; empty: every PBX). The WebSocket's audiences, its state at connect, call control and the
HTTP listings all ask the same two questions (what may this user see; which PBX does this request name) and
must answer them the same way, so a user can never see or act on a PBX they do not belong to.

Pure: the followed PBXs' ids come in as a collection; the answers are ids, or :class:`PbxRefused` with the
status the edge answers (400: the request is unclear or names no such PBX; 403: a PBX the user does not belong
to; 404: no such call on the PBXs the user sees).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Literal

from store.repository import User


class PbxRefused(Exception):
    """A request about a PBX the user may not name, or that names none where several are possible."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def code(self) -> Literal["forbidden", "not_found", "bad_message"]:
        """The protocol's error code for this refusal (the WebSocket's ``error``)."""
        return "forbidden" if self.status == 403 else "not_found" if self.status == 404 else "bad_message"

    @property
    def api_code(self) -> str:
        """The JSON API's ``error.code`` for this refusal."""
        return {403: "forbidden", 404: "not_found"}.get(self.status, "bad_request")


def belongs(user: User, pbx: str) -> bool:
    """Whether ``user`` belongs to ``pbx`` (a user of no PBX in particular belongs to every one)."""
    return not user.pbxs or pbx in user.pbxs


def visible(user: User, followed: Sequence[str]) -> list[str]:
    """The followed PBXs ``user`` sees, in the configuration's order."""
    return [p for p in followed if belongs(user, p)]


def listing_filter(user: User, followed: Sequence[str], requested: str | None) -> list[str] | None:
    """The ``pbxs=`` of a listing for ``user``: None (every PBX) for a user of every PBX who asked for none,
    else the PBXs asked for (``?pbx=a,b``), each of which must be known and one of the user's."""
    if not requested:
        return list(user.pbxs) if user.pbxs else None
    wanted = [p.strip() for p in requested.split(",") if p.strip()]
    if not wanted:
        return list(user.pbxs) if user.pbxs else None
    unknown = [p for p in wanted if p not in followed]
    if unknown:
        raise PbxRefused(400, f"no PBX {unknown[0][:40]!r} (known: {', '.join(followed)})")
    foreign = [p for p in wanted if not belongs(user, p)]
    if foreign:
        raise PbxRefused(403, f"you do not belong to the PBX {foreign[0]!r}")
    return list(dict.fromkeys(wanted))


def named_pbx(user: User, followed: Sequence[str], requested: str | None, *, what: str) -> str:
    """The PBX a request acts on (click-to-call, a pause): the one asked for, which must be the user's, or
    the user's only PBX. ``what`` says in the error what needs one (``"click-to-call"``)."""
    if requested is not None:
        if requested not in followed:
            raise PbxRefused(400, f"no PBX {requested!r} (known: {', '.join(followed)})")
        if not belongs(user, requested):
            raise PbxRefused(403, f"you do not belong to the PBX {requested!r}")
        return requested
    mine = visible(user, followed)
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise PbxRefused(403, "your user belongs to none of the PBXs this daemon follows")
    raise PbxRefused(400, f"{what}: say which PBX in 'pbx' (one of {', '.join(mine)})")


def pbx_of_call(user: User, followed: Sequence[str], requested: str | None, linkedid: str,
                has_call: Callable[[str], bool]) -> str:
    """The PBX of the call ``linkedid`` a request is about: the one asked for (the user's), else the user's
    only PBX, else the one of the user's PBXs where ``has_call`` finds it, when exactly one does (two PBXs
    can hand out the same linkedid: then the request must say which)."""
    if requested is not None or len(visible(user, followed)) <= 1:
        return named_pbx(user, followed, requested, what=f"call {linkedid}")
    found = [p for p in visible(user, followed) if has_call(p)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise PbxRefused(404, f"no call {linkedid} on your PBXs")
    raise PbxRefused(400, f"call {linkedid} is on several PBXs ({', '.join(found)}): say which in 'pbx'")


def among(pbxs: Collection[str] | None, pbx: str) -> bool:
    """Whether a listing filter (None: every PBX) lets ``pbx`` through."""
    return pbxs is None or pbx in pbxs
