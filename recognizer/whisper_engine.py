"""The optional second recogniser: faster-whisper (Whisper in CTranslate2), for centres that want accuracy over CPU.

Vosk (``recognizer/vosk_engine.py``) stays the default and the only engine for live audio. A queue or DID is given to
Whisper in ``[transcription]`` (``EngineChoice(engine="whisper")``); the job code builds this engine once per worker
process and model and calls :meth:`WhisperEngine.transcribe` for each call, as it does Vosk's. The outputs are the
same: words with start/end seconds into the recording, a confidence (Whisper's word probability), and the speaker of
the lane they were heard on.

faster-whisper is an extra (``pip install 'cti-companion[whisper]'``): it is imported here, when an engine is built,
never at the daemon's start, so a daemon without it runs and only a job that asks for Whisper fails, with that
install line as its reason.

What telephone audio needs, and Whisper does not do by itself:

* **16 kHz.** Whisper's features are made for 16 kHz; the PBX records at 8 kHz. Each lane is resampled here
  (:func:`resample`, band-limited, by FFT in overlapping blocks so a long call needs little memory).
* **One side at a time.** A stereo or split recording gives one lane per speaker; each lane is transcribed alone, so
  every word carries its lane's speaker.
* **Only the speech.** A lane is silent while the other side talks, and left to itself Whisper fills long silences
  with invented sentences ("Thank you for watching."). So only the lane's speech stretches are decoded: those
  ``recognizer/silence.py`` finds (the same as Vosk is fed), or, on a lane whose level cannot tell speech from the
  line's noise, those of the Silero voice filter faster-whisper ships. A lane with no speech is never given to Whisper
  (given nothing to skip to, it would decode the whole lane: ~15 CPU seconds of hiss for a 27 s lane).
* **Times in the recording.** Each stretch is decoded in place (faster-whisper's ``clip_timestamps``), so Whisper's
  times are already seconds into the lane, which starts where the recording starts; a word's edges are then pulled
  onto its sound (:class:`_Sound`: Whisper starts a stretch's first word where the stretch starts, silence or not).
  faster-whisper's own ``vad_filter`` is not used: it glues the stretches together and maps the times back, and a
  word near a join lands in the wrong stretch (on ``call_02_en.wav`` the customer's "thank" of 23.4 s came out at
  16.8 s, in the turn before).
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from math import gcd
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from cti.transcripts import EngineName, Speaker, Transcript, Word
from recognizer.engine import CallAudio, Lane, ModelError, RecognizerError
from recognizer.model_check import check_whisper_model
from recognizer.silence import FLOOR_PERCENTILE, FRAME, MIN_CONTRAST_DB, frame_levels, speech_spans

#: The rate Whisper's features are computed at.
WHISPER_RATE = 16_000
#: Punctuation Whisper glues to words (``" Hello,"``): trimmed so a word is a word, as Vosk writes it. Inner
#: apostrophes and hyphens (``don't``, ``ill-disposed``) stay.
_TRIM = string.punctuation + "“”«»„¿¡…—–、。，！？："
#: Speech stretches closer than this (seconds) are decoded as one clip: each clip costs Whisper a whole 30-second
#: window of its encoder, however short, and a pause this long inside a turn is no room for invented words
#: (faster-whisper's own voice filter joins stretches closer than 2 s too).
_CLIP_GAP = 2.0
#: A quiet stretch at least this long (seconds) at a word's edge is silence Whisper counted into the word.
_QUIET_EDGE = 0.15
#: Resampling works on blocks this long (seconds of input), each with this much context on both sides.
_BLOCK_SECONDS = 30
_MARGIN_SECONDS = 1
_SPEAKER_ORDER: dict[Speaker, int] = {"agent": 0, "customer": 1, "unknown": 2}

INSTALL_HINT = "pip install 'cti-companion[whisper]'"


class _WhisperWord(Protocol):
    start: float
    end: float
    word: str
    probability: float


class WhisperEngine:
    """A loaded faster-whisper model (a CTranslate2 model folder) that transcribes calls lane by lane.

    ``device``/``compute_type`` are CTranslate2's (``"cpu"``/``"int8"``: the small, fast choice on a CPU;
    ``"cuda"``/``"float16"`` on a GPU). ``language`` (``"en"``, ``"ru"``) skips Whisper's language detection, which
    on a short lane can guess wrong (and costs a second pass of the model); ``None`` detects it per lane.
    ``cpu_threads`` is per worker process: the pool runs one engine per worker and is sized to the cores
    (``[transcription] workers``), so one thread each, as Vosk, keeps the workers from fighting over the cores; 0 is
    CTranslate2's own default (4 threads) for a machine given to one worker.
    ``beam_size`` 5 is faster-whisper's default; 1 (greedy) is faster and a little less accurate.
    """

    name: EngineName = "whisper"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        language: str | None = None,
        cpu_threads: int = 1,
        beam_size: int = 5,
    ) -> None:
        folder = Path(model_dir)
        self.model = folder.name
        self.language = language
        self.beam_size = beam_size
        try:
            from faster_whisper import WhisperModel  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError as exc:
            raise ModelError(
                f"the Whisper engine needs faster-whisper, which is not installed: {INSTALL_HINT}"
            ) from exc
        check_whisper_model(folder)  # a partial or corrupt folder: a clear reason, before CTranslate2 reads it
        try:
            # local_files_only: a folder that is not a model must fail here, never turn into a download by name.
            self._model: Any = WhisperModel(
                str(folder), device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"the Whisper model {folder} cannot be loaded (partial or corrupt?): {exc}") from exc

    def transcribe(self, audio: CallAudio) -> Transcript:
        """Every lane's words with the lane's speaker, in time order (ties: agent first)."""
        words: list[Word] = []
        languages: list[str] = []
        for lane in audio.lanes:
            lane_words, language = self._lane(lane)
            words.extend(lane_words)
            if language and lane_words:
                languages.append(language)
        words.sort(key=lambda w: (w.start, _SPEAKER_ORDER[w.speaker], w.end))
        return Transcript(
            words=tuple(words), engine=self.name, model=self.model, duration=audio.duration,
            language=self.language or (languages[0] if languages else None),
        )

    def _lane(self, lane: Lane) -> tuple[list[Word], str | None]:
        if lane.rate <= 0:
            raise RecognizerError(f"the {lane.speaker} lane has no sample rate")
        if len(lane.pcm) < 2:
            return [], None
        samples = resample(pcm_to_float(lane.pcm), lane.rate, WHISPER_RATE)
        clips = self._speech(lane, samples)
        if not clips:
            return [], None  # silence only: Whisper is not asked (given nothing, it would decode the whole lane)
        try:
            segments, info = self._model.transcribe(
                samples, language=self.language, beam_size=self.beam_size, word_timestamps=True,
                clip_timestamps=[t for clip in clips for t in clip],
                # each turn is decoded on its own: a word misheard in one turn is not carried into the next
                condition_on_previous_text=False,
            )
            heard = [w for segment in segments for w in (segment.words or ())]  # decoding happens here (lazy)
        except (RuntimeError, ValueError) as exc:
            raise RecognizerError(f"Whisper failed on the {lane.speaker} lane: {exc}") from exc
        onsets = _Sound(lane)
        return [onsets.snap(w) for w in _words(heard, lane.speaker, lane.duration)], info.language

    def _speech(self, lane: Lane, samples: npt.NDArray[np.float32]) -> list[tuple[float, float]]:
        """The stretches of the lane Whisper decodes, in seconds, in order (see the module's docstring)."""
        total = len(lane.pcm) // 2
        spans = speech_spans(lane.pcm, lane.rate)
        if len(spans) == 1 and spans[0].start == 0 and spans[0].end == total:
            # The level detector could not tell speech from the line's noise: Silero decides.
            from faster_whisper.vad import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
                VadOptions,
                get_speech_timestamps,
            )

            found = get_speech_timestamps(samples, VadOptions(), sampling_rate=WHISPER_RATE)
            stretches = [(c["start"] / WHISPER_RATE, c["end"] / WHISPER_RATE) for c in found]
        else:
            stretches = [span.seconds(lane.rate) for span in spans]
        return _merged(stretches, _CLIP_GAP)


def _merged(stretches: Iterable[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in stretches:
        if out and start - out[-1][1] < gap:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class _Sound:
    """Where a lane is louder than its noise floor, frame by frame, to pull a word's edges onto its sound.

    Whisper times a clip's first word from the clip's start: a stretch fed with its lead-in (``recognizer/silence.py``
    keeps a short one) would have the first word begin in the silence before it. A word that starts with at least
    :data:`_QUIET_EDGE` of frames no louder than the floor starts at its first louder frame (a shorter quiet start is
    a consonant's closure, left alone); the same at its end; a word with no louder frame is left as it is.
    """

    def __init__(self, lane: Lane) -> None:
        levels = frame_levels(lane.pcm, lane.rate)
        floor = float(np.percentile(levels, FLOOR_PERCENTILE)) if levels.size else 0.0
        self.loud = levels > floor + MIN_CONTRAST_DB

    def snap(self, word: Word) -> Word:
        first, last = int(word.start / FRAME), int(np.ceil(word.end / FRAME))
        inside = self.loud[first:last]
        if not inside.any():
            return word
        lead, tail = int(inside.argmax()), int(inside[::-1].argmax())
        start = max(word.start, (first + lead) * FRAME) if lead * FRAME >= _QUIET_EDGE else word.start
        end = min(word.end, (last - tail) * FRAME) if tail * FRAME >= _QUIET_EDGE else word.end
        if end <= start:
            return word
        return Word(speaker=word.speaker, text=word.text, start=round(start, 3), end=round(end, 3), conf=word.conf)


def _words(heard: Iterable[_WhisperWord], speaker: Speaker, duration: float) -> Iterable[Word]:
    for w in heard:
        text = w.word.strip().strip(_TRIM)
        if not text:
            continue
        start = min(max(float(w.start), 0.0), duration)
        end = min(max(float(w.end), start), duration)
        yield Word(speaker=speaker, text=text, start=round(start, 3), end=round(end, 3),
                   conf=round(min(max(float(w.probability), 0.0), 1.0), 3))


def pcm_to_float(pcm: bytes) -> npt.NDArray[np.float32]:
    """16-bit signed little-endian PCM as floats in [-1, 1) (an odd trailing byte is dropped)."""
    ints = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2)
    return (ints.astype(np.float32) / 32768.0).astype(np.float32, copy=False)


def resample(samples: npt.NDArray[np.float32], src: int, dst: int) -> npt.NDArray[np.float32]:
    """``samples`` at ``src`` Hz, band-limited and resampled to ``dst`` Hz (``len * dst / src`` samples).

    By FFT (exact for a band-limited signal), in blocks of :data:`_BLOCK_SECONDS` with :data:`_MARGIN_SECONDS` of
    context either side, so an hour-long lane does not need a transform of the whole hour, and a block's edges
    (where the FFT's wrap-around distorts) fall in the context that is thrown away. Blocks start on multiples of
    ``src / gcd`` input samples, where an output sample falls exactly.
    """
    if src == dst or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    g = gcd(src, dst)
    up, down = dst // g, src // g
    step = down * max(1, (_BLOCK_SECONDS * src) // down)
    margin = down * max(1, (_MARGIN_SECONDS * src) // down)
    total = samples.size * up // down
    if samples.size % down:  # every block a whole number of output samples long, the last one too
        samples = np.concatenate([samples, np.zeros(down - samples.size % down, dtype=samples.dtype)])
    n = samples.size
    out = np.empty(total, dtype=np.float32)
    for start in range(0, n, step):
        lo, hi = max(0, start - margin), min(n, start + step + margin)
        block = samples[lo:hi].astype(np.float64)
        size = (hi - lo) * up // down
        spectrum = np.fft.rfft(block)
        bins = size // 2 + 1
        if bins > spectrum.size:
            spectrum = np.concatenate([spectrum, np.zeros(bins - spectrum.size, dtype=spectrum.dtype)])
        else:
            spectrum = spectrum[:bins]
        converted = np.fft.irfft(spectrum, n=size) * (size / (hi - lo))
        first = (start - lo) * up // down
        end = min(min(start + step, n) * up // down, total)
        out[start * up // down:end] = converted[first:first + end - start * up // down]
    return out
