"""Complaint attachments: a file uploaded through the panel, kept under a name the server makes, served back by id.

Why a module of its own: an upload is hostile input at its most direct (a name, a type and a size a client chose,
bytes written to the server's disk), and every check belongs in one place, before anything is kept:

- **Size, while reading.** The body is parsed as it streams in (``python-multipart``'s push parser, one part: the
  file in the field ``file``), and the file's bytes are counted as they arrive: the first byte over
  ``[complaints] max_attachment_mb`` stops the writing, the part already written is deleted, and the answer is a
  413 naming the limit. The edge (``ui_bridge/limits.py``) bounds the whole body too (the file plus
  :data:`MULTIPART_SLACK`), so a client that lies about its size is cut off there.
- **The name.** The client's file name is text only: a name with a path in it (``/``, ``\\``, ``..``), a control
  or direction-changing character, or over :data:`NAME_LIMIT` characters is refused (400); a good one is kept,
  NFC-normalised, as the attachment's ``file_name`` and shown as text and in ``Content-Disposition`` (escaped).
- **The type, by content.** The extension must be one ``[complaints] attachment_types`` accepts (415 otherwise),
  and the bytes must be what the extension says (:func:`content_matches`: the magic numbers of images, PDF and
  the office formats, the member that makes a ZIP a DOCX or an XLSX, no NUL byte in a text file): a page renamed
  ``photo.jpg`` is refused (415).
- **Where.** The file is written as ``.upload-<random>.part`` inside the attachments folder, then renamed to
  ``<random hex>.<extension>``: names the server made, checked again (:meth:`AttachmentFolder.path_of`) whenever a
  path is built from a stored name, so nothing is ever written or read outside the folder.

Downloads go by the attachment's id only (``GET /api/complaints/attachments/ID``, ``routes/complaints.py``), as
``Content-Disposition: attachment`` with the cleaned name, its stored type and ``nosniff``.
"""

from __future__ import annotations

import asyncio
import os
import re
import unicodedata
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from python_multipart.multipart import MultipartParser, parse_options_header

#: What the body may hold beyond the file itself: the part's headers and the boundaries.
MULTIPART_SLACK = 16 * 1024
#: The longest file name kept (characters).
NAME_LIMIT = 200
#: The form field the file comes in.
FIELD = "file"
#: A part's headers at most (bytes): a file name and a type are short.
_HEADER_LIMIT = 8 * 1024
#: The bytes content sniffing reads first.
_HEAD = 64
#: A name the server made: random hex, an extension of letters and digits.
_STORED = re.compile(r"^[0-9a-f]{32}\.[a-z0-9]{1,5}$")
#: Characters no file name keeps: controls, line and paragraph separators, direction overrides.
_BAD_NAME_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\"<>|*?:]")

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"}
#: The member a ZIP must hold to be a document of that type (or, for OpenDocument, the ``mimetype`` it declares).
_ZIP_MEMBER = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml"}
_OPENDOCUMENT = {"odt": b"application/vnd.oasis.opendocument.text",
                 "ods": b"application/vnd.oasis.opendocument.spreadsheet"}


class UploadRefused(Exception):
    """An upload turned away: the HTTP status, an error code, and the message in English and Russian."""

    def __init__(self, status: int, code: str, message_en: str, message_ru: str) -> None:
        super().__init__(message_en)
        self.status = status
        self.code = code
        self.message_en = message_en
        self.message_ru = message_ru


@dataclass(frozen=True, slots=True)
class Received:
    """A file received whole and checked, kept in the folder under ``stored_as``."""

    file_name: str
    content_type: str
    size: int
    stored_as: str


def clean_file_name(raw: str) -> str:
    """The client's file name as kept (NFC, trimmed), or :class:`UploadRefused` (400) for a name with a path or a
    character no name should hold."""
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise UploadRefused(400, "bad_file_name", "the file has no name", "у файла нет имени")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise UploadRefused(400, "bad_file_name", f"the file name {name[:60]!r} holds a path: send the file's own "
                            "name only", f"имя файла «{name[:60]}» содержит путь: отправьте только имя файла")
    if _BAD_NAME_CHAR.search(name):
        raise UploadRefused(400, "bad_file_name", "the file name holds a character a file name cannot hold",
                            "имя файла содержит недопустимый символ")
    if len(name) > NAME_LIMIT:
        raise UploadRefused(400, "bad_file_name", f"the file name is over {NAME_LIMIT} characters",
                            f"имя файла длиннее {NAME_LIMIT} символов")
    return name


def extension_of(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def content_matches(extension: str, head: bytes, path: Path) -> bool:
    """Whether the file's bytes are what its extension says (``head``: its first bytes; ``path``: the whole file,
    read for the ZIP-based formats and text). Blocking: run it off the event loop."""
    if extension in ("jpg", "jpeg"):
        return head.startswith(b"\xff\xd8\xff")
    if extension == "png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if extension == "gif":
        return head[:6] in (b"GIF87a", b"GIF89a")
    if extension == "webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if extension == "heic":
        return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS
    if extension == "pdf":
        return head.startswith(b"%PDF-")
    if extension in ("doc", "xls"):
        return head.startswith(_OLE)
    if extension == "wav":
        return head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    if extension == "mp3":
        return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    if extension == "mp4":
        return head[4:8] == b"ftyp"
    if extension in ("zip", "docx", "xlsx", "odt", "ods"):
        return _zip_matches(extension, head, path)
    if extension == "txt":
        return _is_text(path)
    return False


def _zip_matches(extension: str, head: bytes, path: Path) -> bool:
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if extension in _ZIP_MEMBER:
                return _ZIP_MEMBER[extension] in names
            if extension in _OPENDOCUMENT:
                return "mimetype" in names and archive.read("mimetype").strip() == _OPENDOCUMENT[extension]
            return True
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, NotImplementedError):
        return False


def _is_text(path: Path) -> bool:
    """Plain text: no NUL byte, and not a known binary format under a ``.txt`` name."""
    with path.open("rb") as f:
        head = f.read(_HEAD)
        if head.startswith((b"%PDF-", b"PK\x03\x04", _OLE, b"\x89PNG", b"\xff\xd8\xff", b"MZ", b"\x7fELF")):
            return False
        chunk = head
        while chunk:
            if b"\x00" in chunk:
                return False
            chunk = f.read(64 * 1024)
    return True


def content_disposition(file_name: str) -> str:
    """``attachment`` with the name: an ASCII fallback (anything else an underscore) and the UTF-8 name (RFC 6266),
    so no name can break out of the header."""
    fallback = "".join(ch if ch.isascii() and (ch.isalnum() or ch in " .-_()") else "_" for ch in file_name)
    return f"attachment; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{quote(file_name, safe='')}"


class AttachmentFolder:
    """The folder the files live in (``[complaints] attachments_folder``): every path built from a stored name
    stays inside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_of(self, stored_as: str) -> Path:
        """The file of a stored name; ValueError for a name the server would not have made, or a path out of the
        folder."""
        if not _STORED.fullmatch(stored_as):
            raise ValueError(f"{stored_as[:60]!r} is not a stored attachment's name")
        root = self.folder.resolve()
        path = (root / stored_as).resolve()
        if path.parent != root:
            raise ValueError(f"{stored_as[:60]!r} is outside the attachments folder")
        return path

    async def receive(self, content_type: str, stream: AsyncIterator[bytes], *, max_bytes: int,
                      accepted: dict[str, str]) -> Received:
        """Read one multipart upload (the ``file`` field) from ``stream`` into the folder and check it (module
        docstring); ``accepted``: extension → the type it is served as. :class:`UploadRefused` when it is not kept
        (nothing of it left on disk)."""
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise UploadRefused(415, "unsupported_media_type", "send the file as multipart/form-data, in the field "
                                f"{FIELD!r}", f"отправьте файл как multipart/form-data в поле «{FIELD}»")
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        part = _Part(self, max_bytes=max_bytes, accepted=accepted)
        parser = MultipartParser(boundary, {
            "on_part_begin": part.begin, "on_header_field": part.header_field, "on_header_value": part.header_value,
            "on_header_end": part.header_end, "on_headers_finished": part.headers_finished,
            "on_part_data": part.data, "on_part_end": part.end})
        refused: UploadRefused | None = None
        try:
            async for chunk in stream:
                if refused is not None:
                    continue  # read and dropped: a client still sending must get the answer, not a reset
                try:
                    parser.write(chunk)
                    await part.flush()
                except UploadRefused as exc:
                    refused = exc
                    await part.discard()
                except ValueError as exc:  # python-multipart: a malformed body
                    refused = UploadRefused(400, "bad_request", f"not a multipart body: {exc}",
                                            "тело запроса не в формате multipart")
                    await part.discard()
            if refused is not None:
                raise refused
            try:
                parser.finalize()
            except ValueError as exc:
                raise UploadRefused(400, "bad_request", f"not a whole multipart body: {exc}",
                                    "тело запроса оборвано") from None
            return await part.finish()
        except BaseException:
            await part.discard()
            raise


class _Part:
    """The push parser's callbacks for one upload: the part's headers checked, its bytes queued, then written to the
    temporary file off the event loop (:meth:`flush`, after each chunk the parser took)."""

    def __init__(self, folder: AttachmentFolder, *, max_bytes: int, accepted: dict[str, str]) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.accepted = accepted
        self.name_buf = b""
        self.value_buf = b""
        self.header_bytes = 0
        self.disposition = b""
        self.parts = 0
        self.file_name: str | None = None
        self.extension = ""
        self.size = 0
        self.head = b""
        self.pending: list[bytes] = []
        self.temp: Path | None = None
        self.handle: BinaryIO | None = None
        self.ended = False

    # -- callbacks (synchronous, inside parser.write) ------------------------------------------------------------

    def begin(self) -> None:
        self.parts += 1
        if self.parts > 1:
            raise UploadRefused(400, "bad_request", f"send one file per request, in the field {FIELD!r}",
                                f"отправляйте один файл за запрос, в поле «{FIELD}»")
        self.header_bytes = 0
        self.disposition = b""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.name_buf += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.value_buf += data[start:end]

    def _count(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > _HEADER_LIMIT:
            raise UploadRefused(400, "bad_request", "the part's headers are too long",
                                "заголовки части слишком длинные")

    def header_end(self) -> None:
        if self.name_buf.strip().lower() == b"content-disposition":
            self.disposition = self.value_buf
        self.name_buf = b""
        self.value_buf = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if options.get(b"name") != FIELD.encode() or b"filename" not in options:
            raise UploadRefused(400, "bad_request", f"send the file in the field {FIELD!r} (with its file name)",
                                f"отправьте файл в поле «{FIELD}» (с именем файла)")
        raw = options[b"filename"]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UploadRefused(400, "bad_file_name", "the file name is not UTF-8 text",
                                "имя файла не в кодировке UTF-8") from None
        self.file_name = clean_file_name(text)
        self.extension = extension_of(self.file_name)
        if self.extension not in self.accepted:
            allowed = ", ".join(sorted(self.accepted))
            raise UploadRefused(415, "unsupported_type", f"files of this type are not accepted (accepted: {allowed})",
                                f"файлы такого типа не принимаются (принимаются: {allowed})")

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.file_name is None:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            mb = self.max_bytes / (1024 * 1024)
            raise UploadRefused(413, "too_large", f"the file is larger than {mb:.3g} MB, the most a complaint's file "
                                "may be", f"файл больше {mb:.3g} МБ: это наибольший размер файла жалобы")
        if len(self.head) < _HEAD:
            self.head += data[start:end][:_HEAD - len(self.head)]
        self.pending.append(data[start:end])

    def end(self) -> None:
        self.ended = True

    # -- the file (off the event loop) -----------------------------------------------------------------------------

    async def flush(self) -> None:
        if not self.pending:
            return
        chunks, self.pending = self.pending, []
        if self.handle is None:
            self.temp = self.folder.folder / f".upload-{uuid.uuid4().hex}.part"
            self.handle = await asyncio.to_thread(_open_new, self.temp)
        await asyncio.to_thread(_write_all, self.handle, chunks)

    async def discard(self) -> None:
        """Close and delete what was written (a refusal, a client gone, a failure)."""
        self.pending = []
        handle, temp = self.handle, self.temp
        self.handle = self.temp = None
        if handle is not None:
            await asyncio.to_thread(handle.close)
        if temp is not None:
            await asyncio.to_thread(temp.unlink, missing_ok=True)

    async def finish(self) -> Received:
        await self.flush()
        if self.file_name is None or not self.ended:
            raise UploadRefused(400, "bad_request", f"no file in the field {FIELD!r}", f"нет файла в поле «{FIELD}»")
        if self.size == 0 or self.handle is None or self.temp is None:
            raise UploadRefused(400, "empty_file", "the file is empty", "файл пустой")
        await asyncio.to_thread(self.handle.close)
        self.handle = None
        if not await asyncio.to_thread(content_matches, self.extension, self.head, self.temp):
            raise UploadRefused(415, "wrong_content", f"the file's content is not a {self.extension.upper()} file "
                                "(its name says it is)", f"содержимое файла не соответствует типу "
                                f"{self.extension.upper()}, указанному в его имени")
        stored_as = f"{uuid.uuid4().hex}.{self.extension}"
        target = self.folder.path_of(stored_as)
        await asyncio.to_thread(os.replace, self.temp, target)
        self.temp = None
        return Received(file_name=self.file_name, content_type=self.accepted[self.extension], size=self.size,
                        stored_as=stored_as)


def _open_new(path: Path) -> BinaryIO:
    return path.open("xb")


def _write_all(handle: BinaryIO, chunks: list[bytes]) -> None:
    for chunk in chunks:
        handle.write(chunk)
