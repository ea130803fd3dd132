"""A listing or a report downloaded as CSV: how the client asks for it and the bytes it gets.

The client asks with ``format=csv`` (else ``json``) and ``encoding=utf-8|cp1251`` (:func:`download_format`). The
text is written by the concern's own writer (``;``-separated, CRLF, every cell through
:func:`cti.safe_text.csv_cells`), and sent as 1C and a Russian Excel open it: UTF-8 with a BOM (Excel reads a CSV
with one as UTF-8), or cp1251 for old 1C and Excel (a character cp1251 lacks becomes ``?``), as an attachment with
the file's name. The reports, the QA report, the complaints' list and report and the contact register (which
streams a page at a time) all answer through here.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Literal, TextIO

from starlette.datastructures import QueryParams
from starlette.responses import Response, StreamingResponse

from .api_models import BadRequest

#: The encodings a CSV may be asked in.
ENCODINGS = ("utf-8", "cp1251")
#: Excel reads a CSV that starts with it as UTF-8.
BOM = "\ufeff"

Format = Literal["json", "csv"]


def download_format(q: QueryParams) -> tuple[Format, str]:
    """``format`` (json or csv; absent: json) and ``encoding`` (utf-8 or cp1251; absent: utf-8) of the query;
    BadRequest naming the one that is neither."""
    fmt = q.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise BadRequest("format is json or csv")
    encoding = q.get("encoding") or "utf-8"
    if encoding not in ENCODINGS:
        raise BadRequest("encoding is utf-8 or cp1251")
    return ("csv" if fmt == "csv" else "json"), encoding


def csv_response(write: Callable[[TextIO], object], name: str, encoding: str) -> Response:
    """The CSV ``write`` writes, as the attachment ``name`` in ``encoding``."""
    text = io.StringIO()
    if encoding == "utf-8":
        text.write(BOM)
    write(text)
    return Response(text.getvalue().encode(encoding, "replace"), media_type=_media_type(encoding),
                    headers=_attachment(name))


def csv_stream(pieces: AsyncIterable[str], name: str, encoding: str) -> StreamingResponse:
    """The CSV of ``pieces`` (each some whole lines), encoded as they come: a long listing in constant memory."""
    async def body() -> AsyncIterator[bytes]:
        if encoding == "utf-8":
            yield BOM.encode()
        async for piece in pieces:
            yield piece.encode(encoding, "replace")

    return StreamingResponse(body(), media_type=_media_type(encoding), headers=_attachment(name))


def _media_type(encoding: str) -> str:
    return f"text/csv; charset={'utf-8' if encoding == 'utf-8' else 'windows-1251'}"


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}
