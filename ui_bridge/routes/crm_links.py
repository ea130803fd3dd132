"""``GET /crm/recording/{token}``: a call's recording, to whoever holds a signed link (issue 16).

A CRM stores the link we hand it (``ui_bridge/signed_links.py``) and plays it later, without a login to this panel:
the signature is the permission, and it lasts ``[crm] link_hours``. The answers, in the order they are checked:

* 403 ``forbidden``: not a link this daemon signed (altered, cut, made up): nothing in it was believed;
* 410 ``expired``: a link we signed whose time is up (the CRM asks for the call again to get a fresh one);
* 404 ``not_found``: the call is not in the journal, has no such recording, or its file is gone (the retention);
* else the file, as the QA page gets it (``ui_bridge/recording_audio.py``: HTTP Range, ``no-store``).

No answer names a path or a file. The route is open to anyone (no session), so its refusals say little: which
check failed, never what a valid link would look like.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response

from asterisk.recording_files import RecordingSettings
from store.repository import Store

from ..recording_audio import recording_response
from ..signed_links import BadLink, ExpiredLink, NoRecordingLink, SignedLinks
from .gate import api_error

log = logging.getLogger(__name__)


class RecordingLinkRoute:
    """The handler; ``followed``: the PBXs whose calls the journal holds."""

    def __init__(self, links: SignedLinks, store: Callable[[], Store], recording: RecordingSettings,
                 followed: Sequence[str]) -> None:
        self.links = links
        self.store = store
        self.recording = recording
        self.followed = list(followed)

    async def serve(self, request: Request) -> Response:
        token = request.path_params["token"]
        store = self.store()
        try:
            await self.links.load(store)
            target = self.links.read(token)
        except BadLink as exc:
            return api_error(403, "forbidden", str(exc))
        except ExpiredLink as exc:
            return api_error(410, "expired", str(exc))
        except NoRecordingLink as exc:  # not expected once loaded; said as it is
            return api_error(503, "unavailable", str(exc))
        if target.pbx not in self.followed:
            return api_error(404, "not_found", "the call of this link is not in the journal")
        record = await store.get_call(target.linkedid, pbx=target.pbx)
        if record is None:
            return api_error(404, "not_found", "the call of this link is not in the journal")
        return recording_response(self.recording, target.pbx, record, target.index)
