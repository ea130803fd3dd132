"""A model mirror for the downloader's tests: a real HTTP server on 127.0.0.1 serving a model list and zips made in
the test from tiny model folders, and those folders.

The machines that run the tests have no internet, and ``cti models download`` must be proven on what makes a download
hard: the server honours ``Range`` (206 with ``Content-Range``), can drop the connection in the middle of a file (the
headers promise the whole file, half is sent, the socket is shut), and records every request, so a test can see the
resume was asked for with ``Range``. Nothing here fakes a socket or patches httpx.

The fake models pass :mod:`recognizer.model_check` by being well formed, not by being small copies of real ones: an
acoustic model file that starts like Kaldi's and ends with its priors, a ``const`` OpenFst graph whose header counts
its states and arcs, the conf files.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import struct
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def const_fst(states: int = 3, arcs: int = 4) -> bytes:
    """An OpenFst ``const`` graph of ``states`` states and ``arcs`` arcs (StdArc, file version 2, not aligned)."""

    def string(text: str) -> bytes:
        return struct.pack("<i", len(text)) + text.encode()

    header = struct.pack("<I", 0x7EB2FDD6) + string("const") + string("standard")
    header += struct.pack("<iiQqqq", 2, 0, 0, 0, states, arcs)
    return header + bytes(states * 20) + bytes(arcs * 16)


def acoustic_model(priors: int = 4) -> bytes:
    """A Kaldi nnet3 acoustic model's outline: the TransitionModel's opening token, the priors vector last."""
    body = b"\0B<TransitionModel> <Topology> " + bytes(200) + b"</TransitionModel> <Nnet3> " + bytes(300)
    return body + b"<Priors> FV " + struct.pack("<bi", 4, priors) + bytes(4 * priors)


def write_fake_vosk_model(folder: Path) -> Path:
    """A small folder with the layout and formats of a Vosk model (it passes the check; Vosk could not decode)."""
    files = {
        "am/final.mdl": acoustic_model(),
        "conf/model.conf": b"--beam=10.0\n--frame-subsampling-factor=3\n",
        "conf/mfcc.conf": b"--use-energy=false\n--sample-frequency=16000\n",
        "graph/HCLG.fst": const_fst(),
        "graph/words.txt": "<eps> 0\nмашина 1\n".encode(),
        "graph/phones/word_boundary.int": b"1 nonword\n2 begin\n",
        "README": b"a fake model for the downloader's tests\n",
    }
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def zip_folder(folder: Path, top: str | None) -> bytes:
    """The folder as a zip, its files under ``top/`` (as Alpha Cephei's zips) or at the root when None."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            name = f"{top}/{rel}" if top else rel
            if path.is_dir():
                archive.writestr(name + "/", b"")
            else:
                archive.writestr(name, path.read_bytes())
    return out.getvalue()


def zip_members(members: dict[str, bytes]) -> bytes:
    """A zip with exactly these member names (a hostile one: ``../escape``, ``/etc/x``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return out.getvalue()


@dataclass
class Request:
    path: str
    range: str | None


@dataclass
class Mirror:
    """The served files (URL path -> bytes), which ones drop their first transfer, and what was asked."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    #: Paths whose next full (not ranged) transfers are cut after half the body, counted down per transfer.
    drops: dict[str, int] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def catalogue_url(self) -> str:
        return self.base + "/vosk/models/model-list.json"

    def add_model(self, name: str, archive: bytes, *, lang: str = "ru", md5: str | None = None, kind: str = "small",
                  size: int | None = None) -> str:
        """Serve ``archive`` as ``name``'s zip and list it in the model list (with its real md5 unless given)."""
        path = f"/vosk/models/{name}.zip"
        self.files[path] = archive
        entries = json.loads(self.files.get("/vosk/models/model-list.json", b"[]"))
        entries.append({
            "lang": lang, "lang_text": {"ru": "Russian", "en-us": "US English"}.get(lang, lang),
            "md5": md5 if md5 is not None else hashlib.md5(archive).hexdigest(), "name": name, "obsolete": "false",
            "size": len(archive) if size is None else size, "size_text": f"{len(archive) // 1024}KiB", "type": kind,
            "url": self.base + path, "version": name.rsplit("-", 1)[-1],
        })
        self.files["/vosk/models/model-list.json"] = json.dumps(entries).encode()
        return path

    def ranges(self, path: str) -> list[str | None]:
        with self.lock:
            return [r.range for r in self.requests if r.path == path]


def _handler(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            wanted = self.headers.get("Range")
            with mirror.lock:
                mirror.requests.append(Request(self.path, wanted))
                body = mirror.files.get(self.path)
                drop = body is not None and wanted is None and mirror.drops.get(self.path, 0) > 0
                if drop:
                    mirror.drops[self.path] -= 1
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            if wanted is not None and wanted.startswith("bytes=") and wanted.endswith("-"):
                start = int(wanted[len("bytes="):-1])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if drop:  # promise the whole file, send half, hang up
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    return Handler


@contextmanager
def serve_mirror() -> Iterator[Mirror]:
    """A :class:`Mirror` served on 127.0.0.1 (any free port) for the duration of the block."""
    mirror = Mirror()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror))
    server.daemon_threads = True
    mirror.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="model-mirror", daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
