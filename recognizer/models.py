"""The models folder: which speech models are installed (and whole), which the official list offers, and a download
that survives a dropped connection and never installs what it did not verify.

Alpha Cephei publishes its Vosk models as zips with a catalogue, ``model-list.json``: one object per model with its
``name`` (the folder the zip unpacks to), ``lang``, ``type`` (``small``, ``big``, ``big-lgraph``, ``spk``…), ``url``,
``size`` (bytes), ``md5`` and ``obsolete`` (``"true"``/``"false"``). :func:`available` fetches it over HTTPS with
httpx and keeps a copy in the models folder (:data:`CATALOGUE_CACHE`) for a day, and for when the network is down.

:func:`download` is ``cti models download NAME``:

1. the zip is streamed to ``<models_dir>/<name>.zip.part``; a dropped connection is resumed with an HTTP ``Range``
   request from the bytes already there, a few times in one run and on the next run too (``<name>.zip.part.json``
   remembers which archive the part belongs to: a changed catalogue entry starts over);
2. the whole file's md5 (sha256 when the catalogue gives one) is checked; a mismatch deletes the part file and says
   so;
3. the zip is unpacked into a hidden temporary folder beside the target (same file system), member by member, after
   every member's name was checked (no absolute path, no ``..``, no link: zip-slip) and the total size bounded;
4. the folder passes :mod:`recognizer.model_check` (with :data:`~recognizer.model_check.MANIFEST` written: every
   file's size, so a later partial copy is told apart), then is renamed into place in one step, and the zip deleted.

A model folder is therefore either absent, or whole, or refused at load with the reason: never half-installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Protocol
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from recognizer.engine import ModelError
from recognizer.model_check import PARTIAL_MARKER, Manifest, ModelKind, check_model, detect_kind, read_manifest

#: Alpha Cephei's list of Vosk models (https://alphacephei.com/vosk/models).
DEFAULT_CATALOGUE_URL = "https://alphacephei.com/vosk/models/model-list.json"
#: The catalogue's copy in the models folder, and how long it is used before it is fetched again.
CATALOGUE_CACHE = ".catalogue.json"
CATALOGUE_MAX_AGE = 24 * 3600.0
#: The largest catalogue accepted (the real one is about 30 kB).
MAX_CATALOGUE_BYTES = 4 * 1024 * 1024
#: Tries of one download in one run (each resumes where the previous stopped).
ATTEMPTS = 5
#: A zip may unpack to at most this many times its own size (Vosk's models: 1.1 to 3 times): a zip bomb stops here.
MAX_EXPANSION = 50
#: ... but a small zip may always unpack to this much (a tiny model's conf files compress a hundredfold).
MIN_UNPACK_LIMIT = 256 * 1024 * 1024
#: Streamed in pieces of this size; the progress is told after each.
CHUNK = 256 * 1024

#: A model's name is its folder's: letters, digits, ``.``, ``_``, ``-``; no path, no ``..``.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX = {"md5": re.compile(r"[0-9a-f]{32}"), "sha256": re.compile(r"[0-9a-f]{64}")}


class ModelsError(Exception):
    """A ``cti models`` request that cannot be done; ``str()`` says why and what to do."""


class UnknownModel(ModelsError):
    """The catalogue has no model of that name."""


class DownloadError(ModelsError):
    """The download stopped (network, server, disk); what was fetched stays in the part file for the next run."""


class ChecksumMismatch(ModelsError):
    """The downloaded archive is not the one the catalogue describes: deleted, nothing installed."""


class UnsafeArchive(ModelsError):
    """The archive would write outside its folder, holds links, or unpacks to far more than its size."""


# -- the catalogue -------------------------------------------------------------------------------------------------


def _flag(value: object) -> object:
    # the list writes its booleans as the strings "true"/"false"
    return value.strip().lower() == "true" if isinstance(value, str) else value


class _Entry(BaseModel):
    """One object of ``model-list.json`` as it arrives (validated here, at the edge: it comes from the network)."""

    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(pattern=f"^{_NAME.pattern}$")]
    lang: Annotated[str, Field(max_length=32)] = ""
    lang_text: Annotated[str, Field(max_length=100)] = ""
    type: Annotated[str, Field(max_length=32)] = ""
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    size: Annotated[int, Field(ge=0)] = 0
    size_text: Annotated[str, Field(max_length=32)] = ""
    md5: Annotated[str, Field(max_length=64)] = ""
    sha256: Annotated[str, Field(max_length=128)] = ""
    version: Annotated[str, Field(max_length=32)] = ""
    obsolete: Annotated[bool, BeforeValidator(_flag)] = False


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """A model the official list offers."""

    name: str
    lang: str
    lang_text: str
    #: The list's ``type``: ``small`` (about 50 MB, 300 MB of RAM), ``big``, ``big-lgraph``, ``spk``…
    type: str
    url: str
    #: The zip's size in bytes (0: not given).
    size: int
    md5: str
    sha256: str
    obsolete: bool

    @property
    def kind(self) -> ModelKind:
        return "speaker" if self.type == "spk" else "vosk"

    def checksum(self) -> tuple[str, str] | None:
        """The strongest checksum the list gives, as ``(algorithm, hex digest)``."""
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        return None


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The official list as last fetched."""

    models: tuple[CatalogueModel, ...]
    url: str
    fetched_at: float
    #: Why a stale copy is shown instead of a fresh one (the network was down…), else None.
    stale: str | None = None

    def find(self, name: str) -> CatalogueModel | None:
        return next((m for m in self.models if m.name == name), None)


def parse_catalogue(data: bytes, url: str) -> tuple[CatalogueModel, ...]:
    """The models of a ``model-list.json``. An entry that does not validate (a bad name, a checksum that is not hex,
    a URL that is not HTTP) is left out; a body that is not a JSON list is refused."""
    try:
        raw = json.loads(data)
    except ValueError:
        raise ModelsError(f"the model list at {url} is not JSON") from None
    if not isinstance(raw, list):
        raise ModelsError(f"the model list at {url} is not a list of models")
    models: list[CatalogueModel] = []
    for item in raw:
        try:
            entry = _Entry.model_validate(item)
        except ValidationError:
            continue
        model_url = urljoin(url, entry.url)
        if not _allowed_url(model_url, url):
            continue
        md5, sha256 = entry.md5.strip().lower(), entry.sha256.strip().lower()
        if (md5 and not _HEX["md5"].fullmatch(md5)) or (sha256 and not _HEX["sha256"].fullmatch(sha256)):
            continue
        models.append(CatalogueModel(entry.name, entry.lang, entry.lang_text, entry.type, model_url, entry.size,
                                     md5, sha256, entry.obsolete))
    return tuple(models)


def _allowed_url(model_url: str, catalogue_url: str) -> bool:
    """HTTPS; plain HTTP only when the catalogue itself was asked for over HTTP (a local mirror, the tests)."""
    scheme = urlsplit(model_url).scheme
    return scheme == "https" or (scheme == "http" and urlsplit(catalogue_url).scheme == "http")


def available(models_dir: Path, *, url: str = DEFAULT_CATALOGUE_URL, refresh: bool = False, offline: bool = False,
              client: httpx.Client | None = None, max_age: float = CATALOGUE_MAX_AGE) -> Catalogue:
    """The official list: the cached copy while it is younger than ``max_age`` (and from the same URL), else
    fetched again; when the fetch fails, the cached copy with the reason in :attr:`Catalogue.stale`. ``offline``:
    the cached copy whatever its age, never the network.

    Raises:
        ModelsError: nothing could be fetched and there is no copy.
    """
    cache = models_dir / CATALOGUE_CACHE
    cached = _read_cache(cache, url)
    if cached is not None and not refresh and (offline or time.time() - cached.fetched_at < max_age):
        return cached
    if offline:
        raise ModelsError(f"no copy of the model list from {url} in {models_dir} yet: fetch it once online")
    try:
        with _client(client) as http:
            response = http.get(url)
            response.raise_for_status()
            body = response.content
        if len(body) > MAX_CATALOGUE_BYTES:
            raise ModelsError(f"the model list at {url} is larger than {MAX_CATALOGUE_BYTES} bytes")
        models = parse_catalogue(body, url)
    except (httpx.HTTPError, ModelsError) as error:
        reason = _http_reason(error) if isinstance(error, httpx.HTTPError) else str(error)
        if cached is not None:
            return Catalogue(cached.models, url, cached.fetched_at, stale=reason)
        raise ModelsError(f"cannot fetch the model list from {url}: {reason}") from None
    catalogue = Catalogue(models, url, time.time())
    with contextlib.suppress(OSError):  # a read-only models folder: the list is still shown
        models_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(cache, json.dumps({"url": url, "fetched_at": catalogue.fetched_at,
                                         "body": body.decode("utf-8", "replace")}).encode())
    return catalogue


def _read_cache(cache: Path, url: str) -> Catalogue | None:
    try:
        data = json.loads(cache.read_bytes())
        if data["url"] != url:
            return None
        return Catalogue(parse_catalogue(str(data["body"]).encode(), url), url, float(data["fetched_at"]))
    except (OSError, ValueError, KeyError, TypeError, ModelsError):
        return None


# -- installed models ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """A folder of the models folder and the verdict of :mod:`recognizer.model_check` on it."""

    name: str
    path: Path
    kind: ModelKind | None
    lang: str
    #: Bytes on disk, every file of the folder.
    size: int
    #: Why it cannot be used (the ModelError's message), None when it is whole.
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def installed(models_dir: Path, catalogue: Catalogue | None = None) -> list[InstalledModel]:
    """Every model folder in ``models_dir`` (hidden ones are a download's work: left out), each checked. The
    language comes from the folder's manifest, else the catalogue's entry of that name."""
    if not models_dir.is_dir():
        return []
    found: list[InstalledModel] = []
    for folder in sorted(models_dir.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        manifest = read_manifest(folder)
        entry = catalogue.find(folder.name) if catalogue else None
        kind = detect_kind(folder)
        problem: str | None = None
        try:
            check_model(folder, kind)
        except ModelError as error:
            problem = str(error)
        lang = manifest.lang if manifest else entry.lang if entry else ""
        found.append(InstalledModel(folder.name, folder, kind, lang, _folder_size(folder), problem))
    return found


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


# -- download ------------------------------------------------------------------------------------------------------


class Progress(Protocol):
    """What :func:`download` tells while it works (``cti models download`` draws a bar from it)."""

    def started(self, total: int | None, done: int) -> None:
        """A transfer starts: ``total`` bytes in all (None: unknown), ``done`` already in the part file."""

    def advanced(self, nbytes: int) -> None:
        """``nbytes`` more arrived."""

    def retrying(self, done: int, reason: str) -> None:
        """The connection dropped at ``done`` bytes; the next request resumes there."""

    def stage(self, text: str) -> None:
        """A step with no bytes to count: verifying, unpacking, checking."""


class NoProgress:
    """Tells nobody."""

    def started(self, total: int | None, done: int) -> None:
        pass

    def advanced(self, nbytes: int) -> None:
        pass

    def retrying(self, done: int, reason: str) -> None:
        pass

    def stage(self, text: str) -> None:
        pass


@dataclass(slots=True)
class DownloadReport:
    """What a download did: where the model is, and whether it resumed a part file."""

    model: InstalledModel
    #: Bytes that were already in the part file when this run began (a resume across runs), 0 for a fresh start.
    resumed_from: int = 0
    #: Connections that dropped and were resumed in this run.
    retries: int = 0
    already_installed: bool = False


def part_path(models_dir: Path, name: str) -> Path:
    """Where the zip of ``name`` is streamed to until it is whole and verified."""
    return models_dir / f"{name}.zip.part"


def download(name: str, models_dir: Path, progress: Progress | None = None, *,
             catalogue_url: str = DEFAULT_CATALOGUE_URL, client: httpx.Client | None = None,
             attempts: int = ATTEMPTS, retry_delay: float = 1.0, catalogue: Catalogue | None = None) -> DownloadReport:
    """Fetch, verify and install the catalogue's model ``name`` into ``models_dir/name``.

    A whole model already there is left as it is; a broken one (partial, corrupt) is replaced once the new one is
    verified and unpacked.

    Raises:
        UnknownModel: the list has no such model.
        DownloadError: the transfer failed ``attempts`` times (the part file stays: run again to resume).
        ChecksumMismatch: the archive is not the one described (the part file is deleted).
        UnsafeArchive: the archive would write outside its folder (nothing installed, the zip deleted).
        ModelsError: anything else that stops it, said in words (a full disk, a model that does not check).
    """
    progress = progress or NoProgress()
    if not _NAME.fullmatch(name):
        raise UnknownModel(f"{name!r} is not a model name (letters, digits, '.', '_', '-')")
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelsError(f"cannot create the models folder {models_dir}: {error.strerror or error}") from None
    target = models_dir / name
    with _client(client) as http:
        given = catalogue is not None
        catalogue = catalogue or available(models_dir, url=catalogue_url, client=http)
        entry = catalogue.find(name)
        if entry is None and not given and catalogue.stale is None:  # a model newer than the day-old copy?
            catalogue = available(models_dir, url=catalogue_url, client=http, refresh=True)
            entry = catalogue.find(name)
        if entry is None:
            raise UnknownModel(_unknown(name, catalogue))
        if target.is_dir() and (read_manifest(target) or detect_kind(target)):
            try:
                check_model(target, entry.kind)
            except ModelError:
                pass  # broken: replaced below
            else:
                return DownloadReport(_describe(target, entry), already_installed=True)
        checksum = entry.checksum()
        if checksum is None:
            raise ModelsError(f"the model list gives no checksum for {name}: refusing to install an unverified model")
        report = DownloadReport(_describe(target, entry))
        part = part_path(models_dir, name)
        _fetch(http, entry, part, progress, report, attempts, retry_delay)
    progress.stage(f"checking the {checksum[0]}")
    _verify(part, entry, checksum)
    progress.stage("unpacking")
    try:
        _install(part, target, entry)
    finally:
        _remove(part)
        _remove(_meta_path(part))
    report.model = _describe(target, entry)
    return report


def _unknown(name: str, catalogue: Catalogue) -> str:
    close = [m.name for m in catalogue.models if name.lower() in m.name.lower() and not m.obsolete][:5]
    hint = f" (did you mean {', '.join(close)}?)" if close else " (`cti models list` shows them)"
    return f"the model list has no model {name!r}{hint}"


def _describe(target: Path, entry: CatalogueModel) -> InstalledModel:
    problem: str | None = None
    if target.is_dir():
        try:
            check_model(target, entry.kind)
        except ModelError as error:
            problem = str(error)
    size = _folder_size(target) if target.is_dir() else 0
    return InstalledModel(entry.name, target, entry.kind, entry.lang, size, problem)


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _fetch(http: httpx.Client, entry: CatalogueModel, part: Path, progress: Progress, report: DownloadReport,
           attempts: int, retry_delay: float) -> None:
    """Stream the zip to ``part``, resuming from its length, until the server says it is complete."""
    meta = _meta_path(part)
    wanted = {"url": entry.url, "md5": entry.md5, "sha256": entry.sha256, "size": entry.size}
    try:
        known = json.loads(meta.read_text()) if part.exists() else None
    except (OSError, ValueError):
        known = None
    if known != wanted:  # a part of another archive (the list changed) is no use: start over
        _remove(part)
        _write_atomic(meta, json.dumps(wanted).encode())
    report.resumed_from = _size(part)
    failures = 0
    while True:
        done = _size(part)
        try:
            if _transfer(http, entry, part, done, progress):
                return
        except httpx.HTTPError as error:
            reason = _http_reason(error)
        except OSError as error:
            raise ModelsError(f"cannot write {part}: {error.strerror or error}") from None
        else:
            reason = "the connection closed before the end of the file"
        failures += 1
        if failures >= attempts:
            raise DownloadError(
                f"the download of {entry.name} stopped at {_size(part)} of {entry.size or '?'} bytes ({reason}); "
                "run the same command again to resume it"
            )
        report.retries += 1
        progress.retrying(_size(part), reason)
        time.sleep(retry_delay * failures)


def _transfer(http: httpx.Client, entry: CatalogueModel, part: Path, done: int, progress: Progress) -> bool:
    """One request: True when the file is whole (the server sent it to its end), False when it stopped short."""
    if entry.size and done == entry.size:
        return True
    # identity: the bytes on the wire are the file's, so a Range offset is a file offset
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={done}-"} if done else {})}
    with http.stream("GET", entry.url, headers=headers) as response:
        if response.status_code == 416 and done:  # nothing past what we have: the part is whole (the hash decides)
            return True
        if response.status_code == 206 and done:
            start, total = _content_range(response.headers.get("content-range", ""))
            if start != done:
                raise DownloadError(f"the server resumed {entry.name} at byte {start}, not {done}: run again")
            mode = "ab"
        elif response.status_code == 200:
            total, mode, done = _int(response.headers.get("content-length")), "wb", 0  # Range ignored: from 0
        else:
            raise DownloadError(f"the server answered {response.status_code} for {entry.url}")
        expected_total = total if total is not None else (entry.size or None)
        progress.started(expected_total, done)
        with part.open(mode) as out:
            for chunk in response.iter_raw():  # as they arrive: a drop loses nothing already received
                out.write(chunk)
                progress.advanced(len(chunk))
    size = _size(part)
    return expected_total is None or size >= expected_total


def _content_range(value: str) -> tuple[int, int | None]:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
    if match is None:
        return -1, None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _verify(part: Path, entry: CatalogueModel, checksum: tuple[str, str]) -> None:
    algorithm, expected = checksum
    digest = hashlib.new(algorithm)
    with part.open("rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        _remove(part)
        _remove(_meta_path(part))
        raise ChecksumMismatch(
            f"the download of {entry.name} does not match its {algorithm} ({digest.hexdigest()}, the list says "
            f"{expected}): the file was deleted and nothing installed; run the command again"
        )


# -- unpacking -----------------------------------------------------------------------------------------------------


def safe_members(archive: zipfile.ZipFile, limit: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Each member with the relative path it unpacks to, the archive's single top folder (``vosk-model-xx/``)
    taken off. Refuses an absolute path, a ``..``, a drive, a link, or more than ``limit`` bytes unpacked."""
    members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    total = 0
    for info in archive.infolist():
        raw = info.filename
        path = PurePosixPath(raw.replace("\\", "/"))
        if (raw.startswith(("/", "\\")) or path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", raw)
                or "\0" in raw):
            raise UnsafeArchive(f"the archive has a member that would be written outside its folder: {raw!r}")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(f"the archive has a link, {raw!r}: refused")
        total += info.file_size
        if total > limit:
            raise UnsafeArchive(f"the archive unpacks to more than {limit} bytes: refused")
        members.append((info, path))
    tops = {path.parts[0] for _info, path in members if path.parts}
    strip = len(tops) == 1 and all(len(p.parts) > 1 or i.is_dir() for i, p in members)
    out = [(info, PurePosixPath(*path.parts[1:]) if strip else path) for info, path in members]
    return [(info, path) for info, path in out if path.parts]


def _install(part: Path, target: Path, entry: CatalogueModel) -> None:
    """Unpack into a hidden folder beside ``target``, check it, then rename it into place (one step)."""
    try:
        archive = zipfile.ZipFile(part)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelsError(f"the download of {entry.name} is not a zip archive ({error})") from None
    work = Path(tempfile.mkdtemp(prefix=f".unpack-{entry.name}-", dir=target.parent))
    try:
        (work / PARTIAL_MARKER).touch()
        files: dict[str, int] = {}
        with archive:
            limit = max(_size(part) * MAX_EXPANSION, MIN_UNPACK_LIMIT)
            for info, rel in safe_members(archive, limit):
                destination = work.joinpath(*rel.parts)
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, destination.open("wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
                files[rel.as_posix()] = info.file_size
        if not files:
            raise ModelsError(f"the archive of {entry.name} is empty")
        Manifest(entry.name, entry.lang, entry.kind, entry.url, files).write(work)
        (work / PARTIAL_MARKER).unlink()
        try:
            check_model(work, entry.kind)
        except ModelError as error:
            raise ModelsError(f"the archive of {entry.name} does not hold a usable model: "
                              f"{str(error).replace(str(work), 'it')}") from None
        _swap_into_place(work, target)
    except zipfile.BadZipFile as error:
        raise ModelsError(f"the archive of {entry.name} is corrupt ({error})") from None
    except OSError as error:
        raise ModelsError(f"cannot unpack {entry.name} into {target.parent}: {error.strerror or error}") from None
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _swap_into_place(work: Path, target: Path) -> None:
    """``work`` becomes ``target``; a broken folder already there is moved aside first and deleted after."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".old-{target.name}-", dir=target.parent))
        os.rename(target, old / target.name)
    os.rename(work, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- small helpers -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client(client: httpx.Client | None) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    timeout = httpx.Timeout(30.0, connect=15.0)
    with httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": "cti-companion"}) as own:
        yield own


def _http_reason(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        return f"the server answered {error.response.status_code}"
    text = str(error) or type(error).__name__
    return text if len(text) < 200 else text[:200] + "…"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


__all__ = [
    "ATTEMPTS", "CATALOGUE_CACHE", "DEFAULT_CATALOGUE_URL", "Catalogue", "CatalogueModel", "ChecksumMismatch",
    "DownloadError", "DownloadReport", "InstalledModel", "ModelsError", "NoProgress", "Progress", "UnknownModel",
    "UnsafeArchive", "available", "download", "installed", "parse_catalogue", "part_path", "safe_members",
]
