"""The Whisper engine gives what Vosk gives: each word on its speaker's lane, at its time in the recording.

Over real parts: the speech set's stereo English call (``call_02_en.wav``, 8 kHz, left = agent, right = customer,
each side silent while the other talks; ``calls.jsonl`` gives every utterance's bounds) through the job code as the
daemon runs it, the Whisper base model joined from its PyPI parts (``tests/recognizer/whisper_model.py``), loaded
once per test process by the job code's engine cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cti.transcripts import AudioSource, EngineChoice
from recognizer.engine import CallAudio, Lane, ModelError
from recognizer.job import engine_for, run_job
from recognizer.whisper_engine import WhisperEngine, resample
from tests.recognizer.test_whisper_accuracy import whisper_job
from tests.recognizer.wer import normalise
from tests.recognizer.whisper_model import build_whisper_base, whisper_base_dir
from tests.speech import speech_calls
from tests.traces import REPO

#: How far outside its utterance's bounds a word may start or end (issue 14).
TOLERANCE = 0.3


def test_each_word_of_a_stereo_call_is_inside_an_utterance_of_its_own_side() -> None:
    call = next(c for c in speech_calls() if c.path.name == "call_02_en.wav")
    left = call.channels["left"]
    assert left in ("agent", "customer")
    transcript = run_job(whisper_job(100, AudioSource(call.path.name, "stereo", left=left), folder=call.path.parent))

    assert transcript.engine == "whisper" and transcript.language == "en"
    assert transcript.duration == pytest.approx(call.duration, abs=0.01)
    for word in transcript.words:
        own = [u for u in call.utterances if u.channel == word.speaker]
        assert any(u.start - TOLERANCE <= word.start <= word.end <= u.end + TOLERANCE for u in own), (
            f"{word} is outside every {word.speaker} utterance: {[(u.start, u.end) for u in own]}")
        assert 0.0 <= word.conf <= 1.0
    assert [w.start for w in transcript.words] == sorted(w.start for w in transcript.words)

    # Every turn was heard, on its side, by some of its own words (the synthetic voice's "four two seven nine"
    # comes out as "four two heaven's eyes": the words, not their accuracy, are checked here).
    for u in call.utterances:
        heard = {word for w in transcript.words if w.speaker == u.channel
                 and u.start - TOLERANCE <= w.start <= u.end + TOLERANCE for word in normalise(w.text)}
        assert heard & set(normalise(u.text)), f"{u.channel} said {u.text!r}, heard {sorted(heard)}"
    agent, customer = set(normalise(transcript.text("agent"))), set(normalise(transcript.text("customer")))
    assert {"morning", "service", "order", "tomorrow", "lunch"} <= agent - customer
    assert {"monday", "repair", "goodbye"} <= customer - agent


def _engine() -> WhisperEngine:
    model = whisper_base_dir()
    engine = engine_for(EngineChoice(engine="whisper", model=model.name, language="en"), str(model))
    assert isinstance(engine, WhisperEngine)
    return engine


def test_a_silent_lane_and_a_hissing_lane_give_no_words() -> None:
    """Left alone, Whisper fills a silent stretch with invented sentences; the idle side of a call gives nothing."""
    rate, seconds = 8000, 20
    silent = Lane("agent", bytes(rate * seconds * 2), rate)
    hiss = np.random.default_rng(7).normal(0.0, 100.0, rate * seconds)  # about -50 dBFS of line noise
    noisy = Lane("customer", hiss.astype("<i2").tobytes(), rate)

    transcript = _engine().transcribe(CallAudio((silent, noisy)))

    assert transcript.words == ()
    assert transcript.duration == pytest.approx(seconds)


def test_an_empty_call_gives_an_empty_transcript() -> None:
    transcript = _engine().transcribe(CallAudio((Lane("agent", b"", 8000), Lane("customer", b"\x00", 8000))))
    assert transcript.words == () and transcript.engine == "whisper"


@pytest.mark.parametrize(("damage", "reason"), [
    ("missing", "does not exist"),
    ("no-tokenizer", "tokenizer.json"),
    ("cut-short", "cut short"),
    ("parts", "join them into model.bin"),
])
def test_a_missing_partial_or_corrupt_model_is_refused_with_its_reason(
        tmp_path: Path, damage: str, reason: str) -> None:
    source = whisper_base_dir()
    folder = tmp_path / "whisper-base"
    if damage != "missing":
        folder.mkdir()
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(source / name, folder / name)
        with open(source / "model.bin", "rb") as src:
            head = src.read(1 << 20)
        if damage == "parts":
            (folder / "model.bin.part1").write_bytes(head)
        else:
            (folder / "model.bin").write_bytes(head)  # a download cut after 1 MB
        if damage == "no-tokenizer":  # a whole model.bin, no tokenizer.json (faster-whisper would download one)
            (folder / "tokenizer.json").unlink()
            (folder / "model.bin").unlink()
            (folder / "model.bin").symlink_to(source / "model.bin")

    with pytest.raises(ModelError, match=reason) as error:
        WhisperEngine(folder)
    assert str(folder) in str(error.value)


def test_without_the_extra_the_daemon_runs_and_a_whisper_job_says_what_to_install(tmp_path: Path) -> None:
    """faster-whisper is an extra: nothing imports it until a job asks for Whisper, and that job's reason is the
    install line (run in a fresh interpreter where the package cannot be imported)."""
    script = f"""
import json, sys
sys.modules["faster_whisper"] = None  # as if `pip install cti-companion` had not installed the extra
import companion.daemon, companion.transcriber, recognizer.job, recognizer.whisper_engine
loaded = "faster_whisper" in sys.modules and sys.modules["faster_whisper"] is not None
from cti.transcripts import EngineChoice
from recognizer.engine import ModelError
try:
    recognizer.job.engine_for(EngineChoice(engine="whisper", model="whisper-base"), {str(whisper_base_dir())!r})
    reason = None
except ModelError as error:
    reason = str(error)
print(json.dumps({{"loaded": loaded, "reason": reason}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] is False
    assert result["reason"] is not None and "pip install 'cti-companion[whisper]'" in result["reason"]


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 16000), (48000, 16000), (11025, 16000)])
def test_resampling_keeps_a_telephone_band_tone_exact(src: int, dst: int) -> None:
    seconds = 65  # longer than one resampling block: the joins between blocks are checked too
    t = np.arange(src * seconds + 7) / src
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t + 0.3)).astype(np.float32)

    out = resample(tone, src, dst)

    assert out.dtype == np.float32 and out.size == tone.size * dst // src
    t2 = np.arange(out.size) / dst
    expected = 0.5 * np.sin(2 * np.pi * 1000 * t2) + 0.2 * np.sin(2 * np.pi * 3100 * t2 + 0.3)
    inner = slice(dst, out.size - dst)  # the ends of a signal cut mid-wave are not periodic: left out
    assert float(np.abs(out[inner] - expected[inner]).max()) < 1e-3


def test_the_test_model_folder_is_built_whole_or_not_at_all(tmp_path: Path) -> None:
    """A run killed while joining the parts leaves only its private folder: the next run neither takes it for the
    model nor keeps a damaged model, and builds a whole one."""
    killed = tmp_path / "whisper-base.building-killed"
    killed.mkdir()
    (killed / "model.bin").write_bytes(b"\0" * 1000)  # a half-joined model, from a run killed an hour ago
    os.utime(killed, (0, 0))
    damaged = tmp_path / "whisper-base"
    damaged.mkdir()
    (damaged / "model.bin").write_bytes(b"\0" * 1000)

    built = build_whisper_base(tmp_path)

    assert built == damaged and not killed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whisper-base"]
    assert (built / "model.bin").stat().st_size == (whisper_base_dir() / "model.bin").stat().st_size
    WhisperEngine(built)  # loads: the folder is a whole model
    assert build_whisper_base(tmp_path) == built  # a whole folder is reused as it is
