"""A call's recording served over HTTP: the one way the panel sends an audio file, to the QA page's player
(``ui_bridge/routes/qa.py``, behind a login) and to a CRM holding a signed link (``ui_bridge/routes/crm_links.py``,
without one).

The client names a number (the recording's index in the journal's list), never a file: the name comes from the
journal and becomes a path only through ``asterisk/recording_files.py`` (which refuses a name that would lead out of
the recordings folder). Starlette's ``FileResponse`` answers HTTP Range requests itself (206, the bytes asked for),
so a player seeks without loading the whole call; ``Cache-Control: no-store`` keeps a call's voice out of caches.
No answer names a path or a file: a 404 says which recording of which call is missing and why, in words.
"""

from __future__ import annotations

import logging
import mimetypes

from starlette.responses import FileResponse, Response

from asterisk.recording_files import RecordingSettings, recording_path
from cti.records import CallRecord

from .routes.gate import api_error

log = logging.getLogger(__name__)


def recordings_of(record: CallRecord) -> tuple[str, ...]:
    """The call's recordings as the journal lists them (older rows: the one ``recording``)."""
    if record.recordings:
        return record.recordings
    return (record.recording,) if record.recording else ()


def recording_response(settings: RecordingSettings, pbx: str, record: CallRecord, index: str | int) -> Response:
    """The ``index``-th recording of ``record`` (a call of ``pbx``) as a file answer with Range support, or a 404
    saying what is missing. ``index`` as the client sent it (a path's text) or already a number."""
    linkedid = record.linkedid
    text = str(index)
    names = recordings_of(record)
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and int(text) < len(names)):
        return api_error(404, "not_found", f"call {linkedid} has no recording {text[:10]!r} "
                         f"({len(names)} recording(s): 0..{len(names) - 1})" if names
                         else f"call {linkedid} has no recording")
    name = names[int(text)]
    try:
        path = recording_path(settings, pbx, name)
    except ValueError as exc:
        log.warning("audio: the journal's recording %r of call %s on %s is refused: %s", name, linkedid, pbx, exc)
        return api_error(404, "not_found", f"recording {text} of call {linkedid} cannot be read here")
    if not path.is_file():
        return api_error(404, "not_found", f"recording {text} of call {linkedid} is not in the recordings "
                         "folder (deleted by the retention, or the folder is not mounted)")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media == "audio/x-wav":
        media = "audio/wav"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-store"})
