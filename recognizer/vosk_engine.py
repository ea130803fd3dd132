"""The default recogniser: Vosk (Kaldi), on the centre's own machine, fast enough for every call on a small CPU.

One :class:`VoskEngine` per worker process and model: the model is loaded once (seconds, hundreds of MB) and shared
by every recogniser built from it. Each lane of a call gets its own ``KaldiRecognizer`` at the lane's sample rate
(telephone audio stays 8 kHz; the model's features are computed at the rate it is told), with word times on.

Only the stretches of a lane that hold speech are fed (``recognizer/silence.py``): in a stereo call each side is
silent half the time, and Vosk spends as much CPU on silence as on speech. Each stretch is fed in 0.2 s chunks, as
``../shared/speech/eval_vosk.py`` (the bare-Vosk baseline of ``bench/``) does, and closed with ``FinalResult()``,
which ends the utterance and starts the next stretch with a fresh feature pipeline, the same as a new recogniser
would, without building one. Vosk counts word times from the first sample it was given; the stretch's place in the
lane is added back, so a word's time is seconds into the recording.

A model folder that is not a Vosk model, or a partial one (a download cut short), gives :class:`ModelError` with a
message saying which file is wrong, before Vosk is asked to load it (``recognizer/model_check.py``): Kaldi's loaders
can abort the process on a truncated file, and a worker that dies on every job is worse than a job that fails with a
reason.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cti.transcripts import EngineName, Speaker, Transcript, Word
from recognizer.engine import CallAudio, Lane, ModelError, RecognizerError
from recognizer.model_check import check_speaker_model, check_vosk_model
from recognizer.silence import Span, speech_spans

#: Seconds of audio per ``AcceptWaveform`` call (``eval_vosk.py``'s step).
CHUNK_SECONDS = 0.2
_SPEAKER_ORDER: dict[Speaker, int] = {"agent": 0, "customer": 1, "unknown": 2}

_models: dict[str, Any] = {}
_spk_models: dict[str, Any] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Utterance:
    """What Vosk heard between two end points of one lane: its words (times in the recording) and, when a speaker
    model is loaded, the speaker's x-vector (``recognizer/speakers.py`` tells the voices of a mixed lane apart)."""

    speaker: Speaker
    words: tuple[Word, ...]
    start: float
    end: float
    #: Vosk's ``spk`` (128 floats) when a speaker model was given and the utterance was long enough.
    vector: tuple[float, ...] | None = None
    #: How many frames the vector was computed from (``spk_frames``): longer is more reliable.
    vector_frames: int = 0


class VoskEngine:
    """A loaded Vosk model that transcribes calls (see :class:`recognizer.engine.Engine`).

    Args:
        model_dir: the model's folder (``am/``, ``conf/``, ``graph/``, ``ivector/``).
        spk_model_dir: a speaker model (``vosk-model-spk-0.4``): each utterance of a mixed (``unknown``) lane then
            carries its x-vector (:meth:`utterances`).
        name: the model's name stored with each transcript; default the folder's name.
        language: the model's language, stored with each transcript (``ru``, ``en``), when known.

    Raises:
        ModelError: the folder is missing, not a Vosk model, partial, or Vosk cannot load it.
    """

    name: EngineName = "vosk"

    def __init__(self, model_dir: Path | str, *, spk_model_dir: Path | str | None = None, name: str | None = None,
                 language: str | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.model = name or self.model_dir.resolve().name
        self.language = language
        self._vosk = _import_vosk()
        self.vosk_model = load_model(self.model_dir)
        self.spk_model = load_spk_model(Path(spk_model_dir)) if spk_model_dir is not None else None

    def transcribe(self, audio: CallAudio) -> Transcript:
        """Every lane's words, with the lane's speaker, merged in time order (ties: agent first)."""
        keyed: list[tuple[float, int, int, int, Word]] = []
        for index, lane in enumerate(audio.lanes):
            for utterance in self.utterances(lane):
                for word in utterance.words:
                    # (start, agent first, lane, as heard): a lane's own order is kept for equal starts
                    keyed.append((word.start, _SPEAKER_ORDER[word.speaker], index, len(keyed), word))
        keyed.sort(key=lambda item: item[:4])
        return Transcript(words=tuple(item[4] for item in keyed), engine=self.name, model=self.model,
                          duration=audio.duration, language=self.language)

    def utterances(self, lane: Lane, spans: tuple[Span, ...] | None = None) -> list[Utterance]:
        """One lane's utterances, in order, over its speech stretches (``spans``; default: found by
        :func:`recognizer.silence.speech_spans`). A mixed lane's utterances carry x-vectors when a speaker model
        was given."""
        if lane.rate <= 0:
            raise RecognizerError(f"a lane has no sample rate ({lane.rate})")
        if spans is None:
            spans = speech_spans(lane.pcm, lane.rate)
        if not spans:
            return []
        recognizer = self._recognizer(lane)
        step = int(lane.rate * CHUNK_SECONDS) * 2
        fed = 0  # samples given to this recogniser so far: Vosk's clock
        out: list[Utterance] = []
        for span in spans:
            shift = (span.start - fed) / lane.rate  # Vosk's time -> the recording's
            pcm = lane.pcm[span.start * 2:span.end * 2]
            for i in range(0, len(pcm), step):
                if self._accept(recognizer, pcm[i:i + step]):
                    out.extend(_utterance(recognizer.Result(), lane.speaker, shift))
            out.extend(_utterance(recognizer.FinalResult(), lane.speaker, shift))
            fed += len(pcm) // 2
        return out

    def _recognizer(self, lane: Lane) -> Any:
        try:
            if self.spk_model is not None and lane.speaker == "unknown":
                recognizer = self._vosk.KaldiRecognizer(self.vosk_model, float(lane.rate), self.spk_model)
            else:
                recognizer = self._vosk.KaldiRecognizer(self.vosk_model, float(lane.rate))
        except Exception as e:  # vosk raises a bare Exception
            raise RecognizerError(f"Vosk could not start a recogniser at {lane.rate} Hz: {e}") from None
        recognizer.SetWords(True)
        return recognizer

    @staticmethod
    def _accept(recognizer: Any, chunk: bytes) -> bool:
        try:
            return bool(recognizer.AcceptWaveform(chunk))
        except Exception as e:  # vosk raises a bare Exception
            raise RecognizerError(f"Vosk failed on the audio: {e}") from None


def _utterance(result_json: str, speaker: Speaker, shift: float) -> Iterator[Utterance]:
    """Vosk's result (``{"result": [{"word", "start", "end", "conf"}], "text", "spk"?}``) as an utterance; none when
    it heard no word."""
    result = json.loads(result_json)
    words = tuple(
        Word(speaker=speaker, text=str(w["word"]), start=round(float(w["start"]) + shift, 3),
             end=round(float(w["end"]) + shift, 3), conf=float(w.get("conf", 1.0)))
        for w in result.get("result", ())
    )
    if not words:
        return
    spk = result.get("spk")
    yield Utterance(speaker=speaker, words=words, start=words[0].start, end=words[-1].end,
                    vector=tuple(float(x) for x in spk) if spk else None,
                    vector_frames=int(result.get("spk_frames", 0)) if spk else 0)


def _import_vosk() -> Any:
    try:
        import vosk
    except ImportError as e:  # pragma: no cover - vosk is a dependency; a broken install says so
        raise ModelError(f"the vosk package cannot be imported ({e}); pip install vosk") from None
    # Kaldi's levels: 0 info, -1 warnings, -2 errors only. The speaker model's network warns of unused nodes at every
    # load ("Node tdnn6.relu is never used"): noise in the daemon's log, not something an admin can act on.
    vosk.SetLogLevel(-2)
    return vosk


def load_model(model_dir: Path) -> Any:
    """The ``vosk.Model`` of a folder, loaded once per process (every engine and recogniser of that model shares it).

    Raises:
        ModelError: the folder is missing, not a Vosk model, partial, or Vosk cannot load it.
    """
    return _load_once(_models, model_dir, check_vosk_model, "Model", "model")


def load_spk_model(spk_model_dir: Path) -> Any:
    """The ``vosk.SpkModel`` of a folder, loaded once per process."""
    return _load_once(_spk_models, spk_model_dir, check_speaker_model, "SpkModel", "speaker model")


def _load_once(cache: dict[str, Any], folder: Path, check: Callable[[Path], object], kind: str, what: str) -> Any:
    """``vosk.<kind>`` of ``folder`` from ``cache`` (by its real path), checked and loaded on the first call."""
    key = os.path.realpath(folder)
    with _lock:
        if key in cache:
            return cache[key]
        check(folder)
        vosk = _import_vosk()
        try:
            model = getattr(vosk, kind)(str(folder))
        except Exception as e:  # vosk raises a bare Exception("Failed to create a model")
            raise ModelError(f"Vosk could not load the {what} in {folder} ({e}): the folder is corrupt; "
                             f"download the model again") from None
        cache[key] = model
        return model
