"""Refuse a speech model folder that would not load, before the library is given it.

Vosk (Kaldi and OpenFst underneath) reads a model with C++ code that trusts its files: a missing file makes
``vosk.Model`` raise a bare "Failed to create a model", and a file cut short (an interrupted download or unzip, a
full disk) may make it read past the end of its data and take the worker process down. So every engine checks its
model folder here first, and ``cti models list`` shows the same verdict: a :class:`recognizer.engine.ModelError`
whose message names the folder, the file and what is wrong with it, in words an admin can act on.

What is checked, cheaply (about a second for a 250 MB model: headers and offsets are read, never the data):

* the layout each library needs: which files must be there (Vosk's ``src/model.cc``: ``am/final.mdl``,
  ``conf/model.conf``, ``conf/mfcc.conf``, ``graph/HCLG.fst`` or ``graph/HCLr.fst`` + ``graph/Gr.fst`` +
  ``graph/disambig_tid.int``, the i-vector extractor's six files when ``ivector/final.ie`` is there; the older
  flat layout too), the speaker model's four files, a CTranslate2 Whisper folder's ``model.bin``, ``config.json``,
  vocabulary and ``tokenizer.json``;
* that no file is empty, and that no unfinished download left its marker (:data:`PARTIAL_MARKER`, a ``*.part``
  file) in the folder;
* the sizes recorded by ``cti models download`` (:data:`MANIFEST`, from the zip's own directory) when the model
  came that way;
* each binary file's own length, read from its header: an OpenFst ``const``, ``ngram`` or ``olabel_lookahead``
  graph, a Kaldi matrix, a Kaldi object's closing token, the acoustic model's last field, CTranslate2's variables.
  A file whose header promises more bytes than it holds is cut short: refused.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from recognizer.engine import ModelError

#: What a model folder holds: a Vosk speech model, Vosk's speaker-vector model, a CTranslate2 Whisper model.
ModelKind = Literal["vosk", "speaker", "whisper"]

#: Left in a folder while a download is unpacked into it; its presence means the unpacking never finished.
PARTIAL_MARKER = ".cti-partial"
#: Written by ``cti models download`` beside the model's files: what it is and every file's size in the archive.
MANIFEST = ".cti-model.json"

_FST_MAGIC = 0x7EB2FDD6
_SYMBOL_TABLE_MAGIC = 2125658996
_ADD_ON_MAGIC = 446681434
# FstHeader flags (fst/fst.h)
_HAS_ISYMBOLS, _HAS_OSYMBOLS, _IS_ALIGNED = 1, 2, 4
# ConstFst's arrays are aligned to this (MappedFile::kArchAlignment) when the header says so.
_ALIGNMENT = 16
# ConstFst<StdArc>: a state is (final weight, first arc, arcs, input epsilons, output epsilons) = 5 x 4 bytes; an
# arc is (ilabel, olabel, weight, nextstate) = 4 x 4 bytes.
_CONST_STATE_BYTES, _STD_ARC_BYTES = 20, 16

# The Kaldi objects whose binary form ends with a closing token, by file name.
_CLOSING_TOKENS = {
    "final.ie": b"</IvectorExtractor>",
    "final.dubm": b"</DiagGMM>",
    "final.ext.raw": b"</Nnet3>",
}
# Plain lists written by Kaldi's scripts, one entry a line: a copy cut short ends mid-line.
_LINE_LISTS = {"words.txt", "phones.txt", "disambig_tid.int", "word_boundary.int"}


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``cti models download`` installed: the catalogue's facts and each file's size, to tell a partial copy."""

    name: str
    lang: str
    kind: ModelKind
    url: str
    #: Relative path (``/``-separated) to size in bytes, as the archive's directory gave them.
    files: dict[str, int]

    def write(self, folder: Path) -> None:
        data = {"name": self.name, "lang": self.lang, "kind": self.kind, "url": self.url, "files": self.files}
        (folder / MANIFEST).write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n")


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or None when it has none or it is unreadable (a hand-installed model)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = {str(k): int(v) for k, v in dict(data["files"]).items()}
        kind = data.get("kind", "vosk")
        if kind not in ("vosk", "speaker", "whisper"):
            return None
        return Manifest(str(data["name"]), str(data.get("lang", "")), kind, str(data.get("url", "")), files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class _Bad(Exception):
    """One reason a model is refused (turned into a ModelError naming the folder by the public checks)."""


# -- public checks -------------------------------------------------------------------------------------------------


def check_vosk_model(path: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelError` unless ``path`` is a whole Vosk speech model ``vosk.Model`` can load.

    Call it before ``vosk.Model(path)``: Vosk's C++ loader gives no reason when it fails and may crash on a file
    cut short.
    """
    _run("Vosk model", Path(path), _vosk_problems)


def check_speaker_model(path: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelError` unless ``path`` is a whole Vosk speaker model (``vosk.SpkModel``, x-vectors)."""
    _run("speaker model", Path(path), _speaker_problems)


def check_whisper_model(path: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelError` unless ``path`` is a whole CTranslate2 Whisper model faster-whisper can load
    offline (``model.bin``, ``config.json``, a vocabulary and ``tokenizer.json``)."""
    _run("Whisper model", Path(path), _whisper_problems)


def detect_kind(path: str | os.PathLike[str]) -> ModelKind | None:
    """What kind of model the folder looks like (by its manifest, else its files), None when it looks like none."""
    folder = Path(path)
    manifest = read_manifest(folder)
    if manifest is not None:
        return manifest.kind
    if (folder / "final.ext.raw").exists() or (folder / "transform.mat").exists():
        return "speaker"
    if (folder / "model.bin").exists() or (folder / "model.bin.part1").exists() or (folder / "config.json").exists():
        return "whisper"
    if any((folder / name).exists() for name in ("am", "graph", "conf", "final.mdl", "HCLG.fst", "HCLr.fst")):
        return "vosk"
    return None


def check_model(path: str | os.PathLike[str], kind: ModelKind | None = None) -> ModelKind:
    """Check a folder as ``kind`` (found by :func:`detect_kind` when not given); returns the kind checked."""
    found = kind or detect_kind(path)
    if found is None:
        folder = Path(path)
        if not folder.is_dir():
            _run("model", folder, _vosk_problems)  # says the folder is missing
        raise ModelError(
            f"{folder} is not a speech model folder: it has none of a Vosk model's am/, conf/, graph/, a speaker "
            "model's final.ext.raw or a Whisper model's model.bin"
        )
    {"vosk": check_vosk_model, "speaker": check_speaker_model, "whisper": check_whisper_model}[found](path)
    return found


# -- the layouts ---------------------------------------------------------------------------------------------------


def _run(what: str, folder: Path, problems: Callable[[Path], None]) -> None:
    try:
        _common(folder)
        problems(folder)
    except _Bad as bad:
        raise ModelError(f"{what} {folder}: {bad}") from None
    except OSError as error:  # unreadable file, permissions: still a reason, never a crash
        raise ModelError(f"{what} {folder}: cannot be read ({error.strerror or error})") from None


def _common(folder: Path) -> None:
    """What any model folder must pass: it exists, no unfinished download, the manifest's sizes hold."""
    if not folder.exists():
        raise _Bad("the folder does not exist")
    if not folder.is_dir():
        raise _Bad("is a file, not a model folder (unpack the model's zip into the models folder)")
    if (folder / PARTIAL_MARKER).exists():
        raise _Bad(
            f"an unfinished download or unpacking left it ({PARTIAL_MARKER} is there): the model is partial, "
            "download it again"
        )
    leftovers = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.part"))
    if leftovers:
        raise _Bad(f"an unfinished download left {leftovers[0]} in it: the model is partial, download it again")
    manifest = read_manifest(folder)
    if manifest is None:
        return
    for rel, size in sorted(manifest.files.items()):
        file = folder / rel
        if not file.is_file():
            raise _Bad(f"{rel} is missing (the download installed it): the model is partial, download it again")
        found = file.stat().st_size
        if found != size:
            change = "cut short" if found < size else "changed"
            raise _Bad(
                f"{rel} is {change} ({found} bytes, {size} when installed): the model is partial or corrupt, "
                "download it again"
            )


def _vosk_problems(folder: Path) -> None:
    # Model::Model: am/final.mdl decides between the current layout and the old flat one.
    if (folder / "am" / "final.mdl").exists():
        am, conf, graph = "am/final.mdl", "conf/", "graph/"
        _need(folder, "conf/model.conf", text=True)
    elif (folder / "final.mdl").exists():
        am, conf, graph = "final.mdl", "", ""
    else:
        raise _Bad(
            "is not a Vosk model: it has no am/final.mdl (a Vosk model has am/, conf/ and graph/ folders; was the "
            "zip unpacked one level too deep or too high?)"
        )
    _check_acoustic_model(folder / am, am)
    _need(folder, conf + "mfcc.conf", text=True)
    if (folder / (graph + "HCLG.fst")).exists():
        _check_fst(folder / (graph + "HCLG.fst"), graph + "HCLG.fst")
    elif (folder / (graph + "HCLr.fst")).exists() or (folder / (graph + "Gr.fst")).exists():
        for name in ("HCLr.fst", "Gr.fst"):
            _need(folder, graph + name)
            _check_fst(folder / (graph + name), graph + name)
        _need(folder, graph + "disambig_tid.int", text=True)
    else:
        raise _Bad(f"has no decoding graph: {graph}HCLG.fst, or {graph}HCLr.fst with {graph}Gr.fst")
    for optional in (graph + "words.txt", graph + "phones.txt", graph + "phones/word_boundary.int"):
        if (folder / optional).exists():
            _need(folder, optional, text=True)
    if (folder / "ivector" / "final.ie").exists():
        # Model::ReadDataFiles loads the whole extractor once final.ie is there.
        for name in ("final.ie", "final.dubm", "final.mat", "global_cmvn.stats", "splice.conf", "online_cmvn.conf"):
            rel = "ivector/" + name
            _need(folder, rel, text=name.endswith(".conf"), allow_empty=name == "online_cmvn.conf")
            _check_kaldi_file(folder / rel, rel)
    if (folder / "rescore" / "G.carpa").exists():
        _need(folder, "rescore/G.carpa")
        _need(folder, "rescore/G.fst")
        _check_fst(folder / "rescore" / "G.fst", "rescore/G.fst")


def _speaker_problems(folder: Path) -> None:
    # SpkModel (src/spk_model.cc) reads these four.
    if not (folder / "final.ext.raw").exists():
        raise _Bad("is not a Vosk speaker model: it has no final.ext.raw (x-vector network)")
    for name in ("final.ext.raw", "mfcc.conf", "mean.vec", "transform.mat"):
        _need(folder, name, text=name.endswith(".conf"))
        _check_kaldi_file(folder / name, name)


def _whisper_problems(folder: Path) -> None:
    if not (folder / "model.bin").exists():
        if any(folder.glob("model.bin.part*")):
            raise _Bad("has model.bin in parts (model.bin.part1, …): join them into model.bin first")
        raise _Bad("is not a CTranslate2 Whisper model: it has no model.bin")
    _need(folder, "model.bin")
    _check_ctranslate2(folder / "model.bin")
    _need(folder, "config.json")
    _json_object(folder / "config.json", "config.json")
    vocabularies = [n for n in ("vocabulary.json", "vocabulary.txt") if (folder / n).exists()]
    if not vocabularies:
        raise _Bad("has no vocabulary (vocabulary.json or vocabulary.txt)")
    _need(folder, vocabularies[0])
    if not (folder / "tokenizer.json").exists():
        # faster-whisper would fetch one from the Hugging Face hub: not on a machine kept off the internet.
        raise _Bad("has no tokenizer.json (faster-whisper would try to download one)")
    _need(folder, "tokenizer.json")
    _json_object(folder / "tokenizer.json", "tokenizer.json")


def _need(folder: Path, rel: str, *, text: bool = False, allow_empty: bool = False) -> None:
    file = folder / rel
    if not file.is_file():
        raise _Bad(f"{rel} is missing")
    size = file.stat().st_size
    if size == 0 and not allow_empty:
        raise _Bad(f"{rel} is empty (0 bytes): the model is partial, download it again")
    if text and size and b"\0" in file.read_bytes()[:4096]:
        raise _Bad(f"{rel} should be text and is not: the file is corrupt")
    if Path(rel).name in _LINE_LISTS and size:
        with file.open("rb") as stream:
            stream.seek(-1, os.SEEK_END)
            if stream.read(1) != b"\n":
                raise _Bad(f"{rel} ends in the middle of a line: the file is cut short")


# -- file formats --------------------------------------------------------------------------------------------------


class _View:
    """Bounds-checked reads over a mapped file: a read past the end means the file is cut short."""

    def __init__(self, data: mmap.mmap, rel: str) -> None:
        self.data = data
        self.rel = rel
        self.size = len(data)

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        need = struct.calcsize(fmt)
        if offset + need > self.size:
            raise self.short(offset + need)
        return struct.unpack_from(fmt, self.data, offset)

    def short(self, needed: int) -> _Bad:
        return _Bad(
            f"{self.rel} is cut short ({self.size} bytes, at least {needed} needed): the model is partial, "
            "download it again"
        )

    def end_at(self, expected: int) -> None:
        if self.size < expected:
            raise _Bad(
                f"{self.rel} is cut short ({self.size} bytes, {expected} expected): the model is partial, "
                "download it again"
            )
        if self.size > expected:
            raise _Bad(f"{self.rel} has {self.size - expected} bytes past its end: the file is corrupt")


@contextmanager
def _mapped(file: Path, rel: str) -> Iterator[_View]:
    with file.open("rb") as stream:
        if os.fstat(stream.fileno()).st_size == 0:
            raise _Bad(f"{rel} is empty (0 bytes): the model is partial, download it again")
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield _View(data, rel)


def _check_fst(file: Path, rel: str) -> None:
    """An OpenFst file: its header, and where its types allow it, its exact length."""
    with _mapped(file, rel) as view:
        header, offset = _fst_header(view, 0)
        kind = header[0]
        if kind == "const":
            view.end_at(_const_end(view, offset, header))
        elif kind == "ngram":
            view.end_at(_ngram_end(view, offset, header))
        elif kind.endswith("_lookahead"):
            (magic,) = view.unpack("<i", offset)
            if magic != _ADD_ON_MAGIC:
                raise _Bad(f"{rel} is not a whole look-ahead graph (bad add-on mark): the file is corrupt")
            inner, offset = _fst_header(view, offset + 4)
            if inner[0] != "const":
                return  # another inner type: the header is all we read
            offset = _const_end(view, offset, inner)
            view.end_at(_label_reachable_end(view, offset))
        # "vector" and other types: per-state records of varying length; the header is all we read


def _fst_header(view: _View, offset: int) -> tuple[tuple[str, int, int, int, int], int]:
    (magic,) = view.unpack("<I", offset)
    if magic != _FST_MAGIC:
        raise _Bad(f"{view.rel} is not an OpenFst graph (wrong magic number): the file is corrupt")
    kind, offset = _fst_string(view, offset + 4)
    _arc, offset = _fst_string(view, offset)
    version, flags, _properties, _start, states, arcs = view.unpack("<iiQqqq", offset)
    offset += 40
    if states < 0 or arcs < 0:
        raise _Bad(f"{view.rel} has a corrupt header (negative counts)")
    if flags & _HAS_ISYMBOLS:
        offset = _skip_symbol_table(view, offset)
    if flags & _HAS_OSYMBOLS:
        offset = _skip_symbol_table(view, offset)
    return (kind, flags, version, states, arcs), offset


def _fst_string(view: _View, offset: int) -> tuple[str, int]:
    (length,) = view.unpack("<i", offset)
    if not 0 <= length <= 256:
        raise _Bad(f"{view.rel} has a corrupt header (a name of {length} bytes)")
    offset += 4
    if offset + length > view.size:
        raise view.short(offset + length)
    return bytes(view.data[offset : offset + length]).decode("ascii", "replace"), offset + length


def _skip_symbol_table(view: _View, offset: int) -> int:
    (magic,) = view.unpack("<i", offset)
    if magic != _SYMBOL_TABLE_MAGIC:
        raise _Bad(f"{view.rel} has a corrupt symbol table: the file is corrupt")
    (name_length,) = view.unpack("<i", offset + 4)
    offset += 8 + max(name_length, 0)
    _available, count = view.unpack("<qq", offset)
    offset += 16
    size, data, unpack = view.size, view.data, struct.Struct("<i").unpack_from
    for _ in range(count):
        if offset + 4 > size:
            raise view.short(offset + 4)
        offset += 4 + unpack(data, offset)[0] + 8
    if offset > size:
        raise view.short(offset)
    return offset


def _align(offset: int) -> int:
    return (offset + _ALIGNMENT - 1) // _ALIGNMENT * _ALIGNMENT


def _const_end(view: _View, offset: int, header: tuple[str, int, int, int, int]) -> int:
    """Where a ConstFst's arrays end (ConstFstImpl::Read): states, then arcs, each aligned when flagged."""
    _kind, flags, version, states, arcs = header
    aligned = bool(flags & _IS_ALIGNED) or version == 1  # kAlignedFileVersion
    if aligned:
        offset = _align(offset)
    offset += states * _CONST_STATE_BYTES
    if aligned:
        offset = _align(offset)
    offset += arcs * _STD_ARC_BYTES
    if offset > view.size:
        raise view.short(offset)
    return offset


def _ngram_end(view: _View, offset: int, header: tuple[str, int, int, int, int]) -> int:
    """NGramFstImpl::StorageSize: three counts, three bitmaps, the labels, padding, the weights."""
    states, futures, finals = view.unpack("<QQQ", offset)

    def words(bits: int) -> int:  # BitmapIndex::StorageSize, in 64-bit words
        return (bits + 63) >> 6

    size = 24 + 8 * (words(states * 2 + 1) + words(futures + states + 1) + words(states))
    size += (states + 1) * 4 + futures * 4
    size = (size + 3) & ~3
    size += (states + 1) * 4 + finals * 4 + (futures + 1) * 4
    return offset + size


def _label_reachable_end(view: _View, offset: int) -> int:
    """Walk a look-ahead graph's add-on (AddOnPair of LabelReachableData) to its end: a few hundred ms for
    two million states, and the only way to know the file's length."""
    (has_add_on,) = view.unpack("<B", offset)
    offset += 1
    if not has_add_on:
        return offset
    size, data = view.size, view.data
    int64 = struct.Struct("<q").unpack_from
    for _ in range(2):
        (present,) = view.unpack("<B", offset)
        offset += 1
        if not present:
            continue
        _reach_input, keep_relabel = view.unpack("<BB", offset)
        offset += 2
        if keep_relabel:
            (pairs,) = view.unpack("<q", offset)
            offset += 8 + pairs * 8
        offset += 4  # the final label
        (sets,) = view.unpack("<q", offset)
        offset += 8
        if sets < 0:
            raise _Bad(f"{view.rel} has a corrupt look-ahead table: the file is corrupt")
        for _ in range(sets):
            if offset + 8 > size:
                raise view.short(offset + 8)
            intervals = int64(data, offset)[0]
            if intervals < 0:
                raise _Bad(f"{view.rel} has a corrupt look-ahead table: the file is corrupt")
            offset += 8 + intervals * 8 + 4
        if offset > size:
            raise view.short(offset)
    return offset


def _check_acoustic_model(file: Path, rel: str) -> None:
    """Kaldi's nnet3 acoustic model: a TransitionModel, the network, and last the priors vector, whose length is
    written just before it: the file must end right after it."""
    with _mapped(file, rel) as view:
        if bytes(view.data[:2]) != b"\0B":
            return  # Kaldi's text form: nothing cheap to read
        if bytes(view.data[2:19]) != b"<TransitionModel>":
            raise _Bad(f"{rel} is not a Kaldi acoustic model: the file is corrupt")
        tail_start = max(0, view.size - 8 * 1024 * 1024)
        at = view.data.rfind(b"<Priors> ", tail_start)
        if at < 0:
            raise _Bad(f"{rel} is cut short (its last part, the priors, is missing): the model is partial")
        offset = at + len(b"<Priors> ")
        kind = bytes(view.data[offset : offset + 3])
        width = {b"FV ": 4, b"DV ": 8}.get(kind)
        if width is None:
            raise view.short(offset + 3)
        _size, dim = view.unpack("<bi", offset + 3)
        view.end_at(offset + 3 + 5 + dim * width)


def _check_kaldi_file(file: Path, rel: str) -> None:
    """A Kaldi object: a binary matrix's exact size, a binary object's closing token, a text matrix's bracket."""
    with file.open("rb") as stream:
        head = stream.read(16)
    if not head:
        return
    name = file.name
    if head.startswith((b"\0BFM ", b"\0BDM ")):
        with _mapped(file, rel) as view:
            _r, rows, _c, cols = view.unpack("<bibi", 5)
            width = 4 if head[2:3] == b"F" else 8
            view.end_at(15 + rows * cols * width)
    elif head.startswith(b"\0B") and name in _CLOSING_TOKENS:
        with _mapped(file, rel) as view:
            tail = bytes(view.data[max(0, view.size - 64) :]).rstrip()
            if not tail.endswith(_CLOSING_TOKENS[name]):
                raise _Bad(f"{rel} is cut short (it does not end with {_CLOSING_TOKENS[name].decode()}): the model "
                           "is partial, download it again")
    elif head.lstrip().startswith(b"[") and name.endswith((".vec", ".stats", ".mat")):
        with file.open("rb") as stream:
            stream.seek(max(0, file.stat().st_size - 64))
            if not stream.read().rstrip().endswith(b"]"):
                raise _Bad(f"{rel} is cut short (its closing bracket is missing): the model is partial")


def _check_ctranslate2(file: Path) -> None:
    """CTranslate2's model.bin (specs/model_spec.py, _serialize): a header, then each variable's name, shape,
    type and byte count before its bytes, then the aliases. Walked with the counts, never reading the data."""
    rel = "model.bin"
    with _mapped(file, rel) as view:
        (version,) = view.unpack("<I", 0)
        if not 1 <= version <= 64:
            raise _Bad(f"{rel} is not a CTranslate2 model (binary version {version}): the file is corrupt")
        offset = 4
        if version < 2:
            return  # too old a layout to walk
        offset = _ct2_string(view, offset) + 4  # the spec's name and revision
        (count,) = view.unpack("<I", offset)
        offset += 4
        for _ in range(count):
            offset = _ct2_string(view, offset)
            (rank,) = view.unpack("<B", offset)
            offset += 1 + 4 * rank
            if version >= 4:  # the type id, the byte count
                _type, nbytes = view.unpack("<BI", offset)
            else:  # the item size, the item count
                item, items = view.unpack("<BI", offset)
                nbytes = item * items
            offset += 5 + nbytes
            if offset > view.size:
                raise view.short(offset)
        if version >= 3:
            (aliases,) = view.unpack("<I", offset)
            offset += 4
            for _ in range(aliases):
                offset = _ct2_string(view, _ct2_string(view, offset))
        view.end_at(offset)


def _ct2_string(view: _View, offset: int) -> int:
    (length,) = view.unpack("<H", offset)
    if offset + 2 + length > view.size:
        raise view.short(offset + 2 + length)
    return offset + 2 + length


def _json_object(file: Path, rel: str) -> None:
    try:
        data = json.loads(file.read_bytes())
    except ValueError:
        raise _Bad(f"{rel} is not valid JSON: the file is cut short or corrupt") from None
    if not isinstance(data, dict):
        raise _Bad(f"{rel} is not a JSON object: the file is corrupt")
