"""A complaint's files over real HTTP: an oversized file, a wrong type, a name with a path: each refused with a clear
error and nothing written anywhere (least of all outside the attachments folder); a good file downloads back byte for
byte, by its id, as an attachment with its cleaned name and nosniff."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.ui_bridge.complaints_env import ComplaintsEnv, complaints_env, error_of

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
#: 10 KB: the tests' limit, so an oversized file is small.
LIMIT = ('default_responsible = "oleg"\nmax_attachment_mb = 0.01\n'
         'attachment_types = ["jpg", "png", "pdf", "docx", "txt"]\n')


def tree(root: Path) -> set[str]:
    return {str(Path(d, f).relative_to(root)) for d, _, files in os.walk(root) for f in files}


async def complaint(env: ComplaintsEnv) -> dict[str, Any]:
    response = await (await env.as_("oleg")).post("/api/complaints", json={
        "type": "quality", "client_name": "Петров", "comment": "фото повреждения"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()["complaint"]
    return body


async def upload(env: ComplaintsEnv, cid: int, name: str, data: bytes, kind: str = "application/octet-stream"
                 ) -> Any:
    return await (await env.as_("oleg")).post(f"/api/complaints/{cid}/attachments", files={"file": (name, data, kind)})


async def test_bad_uploads_are_refused_clearly_and_nothing_is_written() -> None:
    async with complaints_env(complaints=LIMIT) as env:
        c = await complaint(env)
        before = tree(env.panel.tmp)
        # Too large, declared: the edge refuses it before reading, in words naming the limit.
        big = await upload(env, c["id"], "photo.png", PNG + b"\0" * 40_000, "image/png")
        assert big.status_code == 413 and "0.01 MB" in error_of(big)["message"], big.text

        # Too large, streamed without a length: cut while reading, the part written so far deleted.
        async def chunks() -> AsyncIterator[bytes]:
            yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="photo.png"\r\n\r\n' + PNG
            for _ in range(4):
                yield b"\0" * 4096
            yield b"\r\n--xyz--\r\n"

        streamed = await (await env.as_("oleg")).post(
            f"/api/complaints/{c['id']}/attachments", content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        assert streamed.status_code == 413, streamed.text
        assert error_of(streamed)["code"] == "too_large" and "0.01 MB" in error_of(streamed)["message_en"]
        # A type not accepted, and a page dressed up as a photo (the content is sniffed, not the name trusted).
        exe = await upload(env, c["id"], "setup.exe", b"MZ" + b"\0" * 100)
        assert exe.status_code == 415 and error_of(exe)["code"] == "unsupported_type"
        fake = await upload(env, c["id"], "photo.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg")
        assert fake.status_code == 415 and error_of(fake)["code"] == "wrong_content"
        fake_docx = await upload(env, c["id"], "act.docx", _zip({"other.xml": b"<x/>"}))
        assert fake_docx.status_code == 415
        # Names with a path, whatever the separator, and a name with a control character.
        for name in ("../../../etc/evil.png", "..\\..\\evil.png", "sub/dir.png", ".."):
            response = await upload(env, c["id"], name, PNG, "image/png")
            assert response.status_code == 400, (name, response.text)
            assert error_of(response)["code"] == "bad_file_name", name
        raw = await (await env.as_("oleg")).post(  # sent as is (httpx would escape the control character)
            f"/api/complaints/{c['id']}/attachments",
            content=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="bad\x07name.png"\r\n\r\n'
            + PNG + b"\r\n--xyz--\r\n", headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        assert raw.status_code == 400 and error_of(raw)["code"] == "bad_file_name", raw.text
        ru = await (await env.as_("oleg")).post(f"/api/complaints/{c['id']}/attachments",
                                                files={"file": ("../evil.png", PNG, "image/png")},
                                                headers={"Accept-Language": "ru"})
        assert "путь" in error_of(ru)["message"]
        empty = await upload(env, c["id"], "empty.txt", b"")
        assert empty.status_code == 400 and error_of(empty)["code"] == "empty_file"
        # Nothing was kept: no file anywhere new, the attachments folder empty, the complaint without files.
        assert tree(env.panel.tmp) - before <= {str(p.relative_to(env.panel.tmp)) for p in
                                                 env.panel.tmp.glob("journal.sqlite*")}
        assert not env.folder.exists() or not any(env.folder.iterdir())
        card = (await (await env.as_("oleg")).get(f"/api/complaints/{c['id']}")).json()["complaint"]
        assert card["attachments"] == []


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


async def test_a_good_file_downloads_back_byte_identical_under_its_cleaned_name() -> None:
    async with complaints_env(complaints=LIMIT) as env:
        c = await complaint(env)
        made = await upload(env, c["id"], "  Фото бампера.png ", PNG, "application/x-anything")
        assert made.status_code == 201, made.text
        attachment = made.json()["attachment"]
        assert (attachment["file_name"], attachment["content_type"], attachment["size"]) == (
            "Фото бампера.png", "image/png", len(PNG))
        docx = await upload(env, c["id"], "акт.docx", _zip({"word/document.xml": b"<w:document/>"}))
        assert docx.status_code == 201, docx.text
        # Kept under names the server made, inside the folder only.
        stored = sorted(p.name for p in env.folder.iterdir())
        assert len(stored) == 2 and all(len(n.split(".")[0]) == 32 for n in stored)
        assert not any("Фото" in n or "акт" in n for n in stored)

        got = await (await env.as_("oleg")).get(attachment["url"])
        assert got.status_code == 200 and got.content == PNG
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
        disposition = got.headers["content-disposition"]
        assert disposition.startswith("attachment;") and "filename*=UTF-8''%D0%A4%D0%BE%D1%82%D0%BE" in disposition
        # The card lists both; a manager reads them; a user with nothing to do with the complaint does not.
        card = (await (await env.as_("oleg")).get(f"/api/complaints/{c['id']}")).json()
        assert [a["file_name"] for a in card["complaint"]["attachments"]] == ["Фото бампера.png", "акт.docx"]
        assert "stored_as" not in card["complaint"]["attachments"][0]
        assert [h["action"] for h in card["history"]].count("attached") == 2
        assert (await (await env.as_("admin")).get(attachment["url"])).content == PNG
        assert (await (await env.as_("dmitry")).get(attachment["url"])).status_code == 403
        # Ids only: anything else is no file.
        assert (await (await env.as_("oleg")).get("/api/complaints/attachments/..%2F..%2Fconfig.toml")
                ).status_code == 404
        assert (await (await env.as_("oleg")).get("/api/complaints/attachments/999")).status_code == 404
