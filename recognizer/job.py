"""One transcription job as a worker process runs it: the call's files in, its :class:`Transcript` out.

The daemon (``companion/transcriber.py``) and ``cti transcribe`` hand :func:`run_job` a :class:`JobSpec` through the
worker pool (``recognizer/pool.py``); everything it needs travels in the spec (pickled), so the worker reads no
configuration file. In the worker:

1. each recording's name becomes a path through ``asterisk/recording_files.py`` (the one function that does it: a
   name from the journal is never trusted to stay inside the recordings folder);
2. the files are decoded into lanes (``recognizer/audio.py``: stereo split, split files, G.711, silence skipped);
3. the engine of the job's choice (Vosk by default, faster-whisper for ``engine = "whisper"``) transcribes them. An
   engine is built once per worker process and model and kept (:data:`MAX_ENGINES` of them): a model costs seconds
   and hundreds of MB to load, and the next job of that model reuses it;
4. a mono lane's words are given their speakers where a speaker model or the call's facts allow
   (``recognizer/speakers.py``).

Whatever goes wrong is a :class:`~recognizer.engine.RecognizerError` whose text is the reason stored with the job.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from asterisk.recording_files import RecordingSettings, recording_path
from cti.records import CallRecord
from cti.transcripts import AudioSource, EngineChoice, Speaker, Transcript, Word

from .audio import load_call_audio
from .engine import CallAudio, Engine, Lane, ModelError
from .settings import WhisperSettings
from .speakers import CallFacts, Turn, assign_speakers, label_words, turn_spans

log = logging.getLogger(__name__)

#: Engines (loaded models) a worker keeps at most; the least recently used goes first. Two covers a site with a
#: Russian and an English model; a third route's model costs a reload now and then, never memory without bound.
MAX_ENGINES = 2


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a worker needs to transcribe one call (picklable: it crosses into the worker process)."""

    job_id: int
    pbx: str
    linkedid: str
    sources: tuple[AudioSource, ...]
    choice: EngineChoice
    #: The model's folder, resolved by the daemon (``[transcription] models_dir`` + the choice's model).
    model_dir: str
    #: ``[recording]``: where the PBX's files are read (names are turned into paths in the worker).
    recording: RecordingSettings
    #: ``[transcription] speaker_model``: tells the voices of a mono recording apart.
    speaker_model: str | None = None
    #: What the journal says of who speaks when (a mono recording's speakers lean on it): :func:`facts_of`.
    facts: CallFacts | None = None
    #: ``[transcription.whisper]``: device, weights' precision, threads (the ``whisper`` engine only).
    whisper: WhisperSettings | None = None


_SPEAKER_ORDER: dict[Speaker, int] = {"agent": 0, "customer": 1, "unknown": 2}
_engines: OrderedDict[tuple[str, str, str | None], Engine] = OrderedDict()


def facts_of(record: CallRecord | None) -> CallFacts | None:
    """The facts of a call's journal row that say who speaks first (the agent greets an inbound caller; the called
    party answers an outbound call). Nothing says when the recording started against the call's events (MixMonitor
    with ``b`` starts at the bridge), so no one-sided stretch is claimed from them."""
    if record is None or record.direction not in ("inbound", "outbound", "internal"):
        return None
    return CallFacts(direction=record.direction)


def run_job(spec: JobSpec) -> Transcript:
    """Transcribe one call (in a worker process). Raises ``RecognizerError`` (``AudioError``, ``ModelError``) with
    the reason."""
    audio = load_call_audio(spec.sources, lambda name: recording_path(spec.recording, spec.pbx, name))
    engine = engine_for(spec.choice, spec.model_dir, spec.whisper)
    if not any(lane.speaker == "unknown" for lane in audio.lanes):
        return engine.transcribe(audio)
    # A mono lane: transcribed on its own, then its words given their speakers; the lanes merged back in time order.
    words: list[Word] = []
    language = spec.choice.language
    for lane in audio.lanes:
        part = engine.transcribe(CallAudio((lane,)))
        language = language or part.language
        words.extend(_tell_speakers(engine, lane, part.words, spec) if lane.speaker == "unknown" else part.words)
    words.sort(key=lambda w: (w.start, _SPEAKER_ORDER[w.speaker], w.end))
    return Transcript(words=tuple(words), engine=engine.name, model=engine.model, duration=audio.duration,
                      language=language)


def engine_for(choice: EngineChoice, model_dir: str, whisper: WhisperSettings | None = None) -> Engine:
    """The worker's engine for ``choice``'s model, loaded on first use and kept for the next jobs."""
    key = (choice.engine, model_dir, choice.language)
    engine = _engines.get(key)
    if engine is not None:
        _engines.move_to_end(key)
        return engine
    engine = _load(choice, Path(model_dir), whisper or WhisperSettings())
    _engines[key] = engine
    while len(_engines) > MAX_ENGINES:
        _engines.popitem(last=False)
    return engine


def _load(choice: EngineChoice, model_dir: Path, whisper: WhisperSettings) -> Engine:
    if not choice.model:
        raise ModelError("no model is configured for this call ([transcription] model)")
    if choice.engine == "whisper":
        try:
            from .whisper_engine import WhisperEngine
        except ImportError as exc:
            raise ModelError(f"the Whisper engine cannot be loaded: {exc}") from None
        return WhisperEngine(model_dir, language=choice.language, device=whisper.device,
                             compute_type=whisper.compute_type, cpu_threads=whisper.cpu_threads,
                             beam_size=whisper.beam_size)
    from .vosk_engine import VoskEngine

    return VoskEngine(model_dir, language=choice.language)


def _tell_speakers(engine: Engine, lane: Lane, words: tuple[Word, ...], spec: JobSpec) -> tuple[Word, ...]:
    """A mono lane's words with their speakers (``recognizer/speakers.py``): by their voices with the speaker model
    and a Vosk model's decoder, else by what the call's facts alone say (the opener's first turn)."""
    facts = spec.facts or CallFacts()
    if not words:
        return words
    asr_model = getattr(engine, "vosk_model", None)
    if spec.speaker_model is not None and asr_model is not None:
        from .vosk_engine import load_spk_model

        return assign_speakers(words, lane.pcm, lane.rate, facts, load_spk_model(Path(spec.speaker_model)),
                               asr_model)
    turns = [Turn(*span.seconds(lane.rate)) for span in turn_spans(lane.pcm, lane.rate)]
    return label_words(words, turns, facts)
